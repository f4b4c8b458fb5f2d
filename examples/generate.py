"""Generate the example data in examples/data/: contacts, accounts and six months of events.

    python examples/generate.py                 # rewrite examples/data/ (the committed files)
    python examples/generate.py --out /tmp/x    # somewhere else
    python examples/generate.py --seed 7        # another, equally plausible, world

The data is made up but behaves like a B2B SaaS marketing database (the company sells a
marketing-analytics platform; see examples/rules.lead). Each contact follows one persona:

    hot          a handful of buyers: ads, landing pages, pricing visits, then a demo request or a
                 meeting booked through the chatbot, all in the last weeks
    evaluator    researching: downloads, webinars, now and then a look at pricing
    loyal        newsletter readers who open (almost) everything and click a lot, read the blog,
                 and never visit pricing or ask for a demo (the loyal-reader trap)
    cooling      were busy early on, then went quiet
    casual       open a newsletter now and then
    dormant      on the list, barely there; some unsubscribe
    new          arrived in the last three weeks through an ad or a social post
    student      downloads everything for a thesis (one even asks for a demo)
    competitor   people from rival vendors checking the pricing page

Contacts carry a role in their buying committee (decision maker, champion, influencer, user,
blocker); some lack attributes (job title, size, industry, country) and a few their account
link (their company email domain finds the account), as in any real CRM.
Accounts form a parent hierarchy (groups, subsidiaries, a regional branch) and list their
web ``domains``. Events name their ``channel`` (email, web, ads, social, events). Three
events belong to a contact deleted from the CRM: a scorer must set them aside, not drop them.

Only the standard library is used, and the output depends only on the arguments: the same
arguments always write the same bytes.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "data"
DEFAULT_SEED = 2026

START = date(2026, 5, 4)  # a Monday; the data covers START .. END (about six months)
END = date(2026, 10, 30)
DAYS = (END - START).days
LAST_MOMENT = datetime(END.year, END.month, END.day, 23, 59, tzinfo=UTC)

# Persona sizes; "casual" takes whatever is left of --contacts.
PERSONAS = {"hot": 8, "evaluator": 30, "loyal": 30, "cooling": 25, "dormant": 60, "new": 14,
            "student": 3, "competitor": 2}
FREEMAIL = ["gmail.com", "outlook.com", "yahoo.com", "proton.me"]
COMPETITOR_DOMAINS = ["metricflow.io", "leadlytics.com"]
DELETED_CONTACT = "c9001"  # events for a contact no longer in the CRM export

FIRST = ["Ana", "Lucía", "Marta", "Carmen", "Sofía", "Elena", "Laura", "Paula", "Irene", "Clara",
         "Javier", "Carlos", "Pablo", "Diego", "Andrés", "Miguel", "Jorge", "Raúl", "Hugo", "Iván",
         "João", "Inês", "Pierre", "Camille", "Léa", "Thomas", "Lukas", "Anna", "Jonas", "Mia",
         "Oliver", "Emma", "James", "Grace", "Liam", "Olivia", "Noah", "Ava", "Ethan", "Chloe",
         "Valentina", "Mateo", "Santiago", "Ximena", "Giulia", "Marco", "Sanne", "Daan"]
LAST = ["García", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Ruiz", "Díaz",
        "Moreno", "Álvarez", "Romero", "Navarro", "Torres", "Silva", "Costa", "Martin", "Bernard",
        "Dubois", "Müller", "Schmidt", "Weber", "Smith", "Johnson", "Brown", "Taylor", "Wilson",
        "Evans", "Hughes", "Rossi", "Bianchi", "de Vries", "Jansen", "Ramírez", "Herrera",
        "Castro", "Vargas", "Ortiz", "Molina", "Delgado"]

# Job titles by buying-committee role.
TITLES = {
    "decision maker": ["CMO", "Chief Marketing Officer", "VP Marketing", "VP of Growth",
                       "Chief Revenue Officer", "CEO"],
    "champion": ["Head of Marketing Operations", "Director of Demand Generation",
                 "Marketing Operations Manager", "Head of Growth", "Revenue Operations Manager"],
    "influencer": ["Marketing Manager", "Digital Marketing Director", "Content Marketing Manager",
                   "Brand Manager", "Product Marketing Manager"],
    "user": ["Marketing Analyst", "Marketing Specialist", "CRM Specialist",
             "Email Marketing Specialist", "Marketing Coordinator", "Growth Analyst"],
    "blocker": ["IT Director", "Procurement Manager", "Chief Financial Officer",
                "Data Protection Officer"],
}
ROLE_WEIGHTS = {"decision maker": 10, "champion": 16, "influencer": 26, "user": 38, "blocker": 10}

# Accounts: (stem, industry, country). Groups below give the parent hierarchy.
COMPANIES = [
    ("Helix Holdings", "Financial services", "US"), ("Helix Software", "Software", "US"),
    ("Helix Software Europe", "Software", "GB"), ("Helix Pay", "Financial services", "GB"),
    ("Grupo Alameda", "Retail", "ES"), ("Alameda Online", "E-commerce", "ES"),
    ("Alameda Portugal", "Retail", "PT"), ("Brightwave", "Software", "GB"),
    ("Corvid Labs", "Software", "DE"), ("Duneline", "E-commerce", "FR"),
    ("Emberly", "Marketing agency", "ES"), ("Fjordly", "Software", "NL"),
    ("Granitex Industrial", "Manufacturing", "DE"), ("Granitex Iberia", "Manufacturing", "ES"),
    ("Halcyon Health", "Healthcare", "US"), ("Ivory Learning", "Education", "GB"),
    ("Juniper Lane", "E-commerce", "US"), ("Kestrel Logistics", "Logistics", "NL"),
    ("Lumora", "Marketing agency", "MX"), ("Meridian Bank", "Financial services", "ES"),
    ("Meridian Seguros", "Financial services", "ES"), ("Nimbus Pay", "Financial services", "FR"),
    ("Orchard & Co", "Retail", "GB"), ("Pellucid Media", "Marketing agency", "FR"),
    ("Quarry Systems", "Software", "US"), ("Riverstone Travel", "E-commerce", "ES"),
    ("Solvane Energy", "Manufacturing", "PT"), ("Tessellate", "Software", "ES"),
    ("Umbra Studio", "Marketing agency", "AR"), ("Vantablu", "E-commerce", "MX"),
    ("Wrenfield Insurance", "Financial services", "GB"), ("Xylo Robotics", "Manufacturing", "DE"),
    ("Yarrow Foods", "Retail", "FR"), ("Zephyrine", "Software", "CO"),
    ("Altamar Hoteles", "E-commerce", "ES"), ("Boreal Cloud", "Software", "DE"),
    ("Cenit Consultores", "Marketing agency", "ES"), ("Delta Mobility", "Logistics", "BR"),
    ("Estrela Telecom", "Software", "BR"), ("Fonte Capital", "Financial services", "PT"),
]
# child index -> parent index (indexes into COMPANIES); Helix is three levels deep.
PARENTS = {1: 0, 2: 1, 3: 0, 5: 4, 6: 4, 13: 12, 20: 19, 29: 16}
SIZES = [12, 35, 60, 120, 250, 480, 900, 1600, 3200, 8000]
TLD = {"US": "com", "GB": "co.uk", "ES": "es", "PT": "pt", "FR": "fr", "DE": "de", "NL": "nl",
       "MX": "com.mx", "AR": "com.ar", "CO": "co", "BR": "com.br"}

# Marketing calendar.
WEBINARS = {date(2026, 6, 10): "webinar-scoring-101", date(2026, 9, 9): "webinar-attribution",
            date(2026, 10, 14): "webinar-roi-of-scoring"}
TRADE_SHOWS = {date(2026, 6, 17): "martech-summit-2026", date(2026, 9, 23): "saas-connect-2026"}
CAMPAIGNS = {date(2026, 5, 20): "case-study-nimbus", date(2026, 6, 3): "webinar-invite-june",
             date(2026, 7, 15): "summer-product-update", date(2026, 8, 26): "q3-launch",
             date(2026, 9, 2): "webinar-invite-september", date(2026, 9, 16): "q3-launch",
             date(2026, 10, 7): "webinar-invite-october", date(2026, 10, 21): "q3-launch"}
ASSETS = ["ebook-lead-scoring-guide", "roi-calculator", "whitepaper-attribution",
          "benchmark-report-2026", "template-scoring-matrix"]
BLOG = ["blog-lead-scoring-101", "blog-bands-and-grades", "blog-loyal-reader-trap",
        "blog-attribution-models", "blog-closed-loop", "blog-email-benchmarks"]
SITE = ["home", "features", "integrations", "customers", "about", "docs", "careers"]
LANDINGS = ["lp-scoring-guide", "lp-q3-launch", "lp-roi-calculator", "lp-free-trial"]
ADS = {"ads": ["google-lead-scoring", "google-marketing-analytics", "retargeting-pricing"],
       "social": ["linkedin-q3-launch", "linkedin-scoring-guide", "twitter-webinar"]}


@dataclass
class Contact:
    id: str
    persona: str
    rng: random.Random
    events: list[tuple[datetime, str, str, str, str, str]] = field(default_factory=list)
    unsubscribed: datetime | None = None

    def add(self, at: datetime, action: str, obj: str, name: str, channel: str) -> None:
        if at <= LAST_MOMENT:  # nothing after the export
            self.events.append((at, self.id, action, obj, name, channel))


@dataclass
class Dataset:
    accounts: list[dict[str, Any]]
    contacts: list[dict[str, Any]]
    events: list[dict[str, Any]]
    personas: dict[str, str]  # contact id -> persona (not part of the files)


# ---- time helpers ---------------------------------------------------------------------------


def day(n: int) -> date:
    return START + timedelta(days=n)


def moment(rng: random.Random, d: date, first_hour: int = 7, last_hour: int = 19) -> datetime:
    """A time during the working day (UTC), to the minute; weekends are quieter but possible."""
    return datetime(d.year, d.month, d.day, rng.randint(first_hour, last_hour), rng.randrange(60),
                    tzinfo=UTC)


def some_day(rng: random.Random, lo: int, hi: int) -> date:
    d = day(rng.randint(max(0, lo), min(DAYS, hi)))
    if d.weekday() >= 5 and rng.random() < 0.7:  # most B2B browsing happens on weekdays
        d -= timedelta(days=d.weekday() - 4)
    return d


def email_sends() -> list[tuple[datetime, str]]:
    """Every Tuesday's newsletter plus the campaigns, as (sent at, name)."""
    sends = []
    d = START + timedelta(days=1)
    while d <= END:
        sends.append((datetime(d.year, d.month, d.day, 8, 0, tzinfo=UTC), f"newsletter-{d}"))
        d += timedelta(days=7)
    sends += [(datetime(d.year, d.month, d.day, 10, 0, tzinfo=UTC), name)
              for d, name in CAMPAIGNS.items()]
    return sorted(sends)


# ---- records --------------------------------------------------------------------------------


def make_accounts(rng: random.Random, n: int) -> list[dict[str, Any]]:
    accounts: list[dict[str, Any]] = []
    for i, (name, industry, country) in enumerate(COMPANIES[:n]):
        slug = name.lower().replace(" & ", "-").replace(" ", "-")
        domains = [f"{slug}.{TLD[country]}"]
        if rng.random() < 0.25:
            domains.append(f"{slug}.com" if TLD[country] != "com" else f"{slug}.io")
        parent = PARENTS.get(i)
        size = rng.choice(SIZES)
        if parent is None and any(p == i for p in PARENTS.values()):
            size = max(size, 2000) * 2  # group holdings are big
        elif parent is not None and parent < len(accounts):
            size = min(size, accounts[parent]["employees"] // 2)  # a part of its group
        accounts.append({
            "id": f"a{i + 1:02d}",
            "name": name,
            "domains": domains,
            "industry": industry,
            "employees": size,
            "country": country,
            "parent": None if parent is None or parent >= n else f"a{parent + 1:02d}",
            "customer": rng.random() < 0.15,
        })
    return accounts


def good_fit(account: dict[str, Any]) -> bool:
    return (50 <= account["employees"] <= 2000 and account["industry"] in
            ("Software", "E-commerce", "Financial services", "Marketing agency"))


def pick_role(rng: random.Random, persona: str) -> str:
    if persona == "hot":  # buyers who push a deal are senior, or champions
        return rng.choice(["decision maker", "champion", "champion", "influencer"])
    roles = list(ROLE_WEIGHTS)
    return rng.choices(roles, weights=[ROLE_WEIGHTS[r] for r in roles])[0]


def person(rng: random.Random, used: set[str], domain: str) -> tuple[str, str, str]:
    while True:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        local = f"{first}.{last}".lower().replace(" ", "")
        for a, b in zip("áéíóúüãçôê", "aeiouuacoe", strict=True):
            local = local.replace(a, b)
        email = f"{local}@{domain}"
        if email not in used:
            used.add(email)
            return first, last, email


ABSENT = object()


def blank(rng: random.Random) -> Any:
    """How a CRM export says "unknown": the key missing (ABSENT), null, or an empty text."""
    return rng.choice([ABSENT, None, ""])


def make_contacts(rng: random.Random, n: int, accounts: list[dict[str, Any]]
                  ) -> list[tuple[str, dict[str, Any]]]:
    personas = [p for p, k in PERSONAS.items() for _ in range(k)]
    if len(personas) > n:
        raise SystemExit(f"--contacts must be at least {len(personas)}")
    personas += ["casual"] * (n - len(personas))
    rng.shuffle(personas)
    fits = [a for a in accounts if good_fit(a)] or accounts
    weights = [rng.choice([1, 1, 2, 3, 5, 8]) for _ in accounts]  # some have many contacts
    used: set[str] = set()
    out = []
    for i, persona in enumerate(personas):
        cid = f"c{i + 1:03d}"
        role = pick_role(rng, persona)
        title: str | None = rng.choice(TITLES[role])
        account: dict[str, Any] | None
        if persona == "hot":
            account = rng.choice(fits[:4])  # buying committees: several buyers per account
        elif persona in ("student", "competitor") or rng.random() < 0.07:
            account = None
        else:
            account = rng.choices(accounts, weights=weights)[0]
        if persona == "student":
            domain = rng.choice(["state-university.edu", "gmail.com", "business-school.edu"])
            title = rng.choice(["Marketing student", "MBA Student", "Student"])
            role = "user"
        elif persona == "competitor":
            domain = COMPETITOR_DOMAINS[i % 2]
            title = rng.choice(["Product Marketing Manager", "Competitive Intelligence Analyst"])
        elif account is None:
            domain = rng.choice(FREEMAIL)
        else:
            domain = rng.choice(account["domains"])
        first, last, email = person(rng, used, domain)
        rec: dict[str, Any] = {"id": cid, "email": email, "first_name": first, "last_name": last,
                               "job_title": title, "role": role,
                               "account": account["id"] if account else None}
        if account:
            rec.update(employees=account["employees"], industry=account["industry"],
                       country=account["country"])
        elif persona == "competitor":
            rec.update(employees=rng.choice([40, 140]), industry="Software",
                       country=rng.choice(["US", "GB"]))
        else:
            rec.update(country=rng.choice(["ES", "MX", "US", "GB", "AR", "FR"]))
        # Gaps, as in a real CRM: no title, no size, no sector, no country.
        for key, p in (("job_title", 0.08), ("employees", 0.12), ("industry", 0.08),
                       ("country", 0.05), ("role", 0.10)):
            if persona not in ("student", "competitor", "hot") and rng.random() < p:
                rec[key] = blank(rng)
        # Some records lost their account link; their company email domain still tells.
        # (A separate generator per contact, so the rest of the data stays as it was.)
        if account and persona != "hot" and random.Random(f"{cid}-link").random() < 0.06:
            rec["account"] = None
        if isinstance(rec.get("employees"), int) and rng.random() < 0.05:
            rec["employees"] = str(rec["employees"])  # imported from a spreadsheet
        rec = {k: v for k, v in rec.items() if v is not ABSENT}
        out.append((persona, rec))
    return out


# ---- behaviour ------------------------------------------------------------------------------


def email_behaviour(c: Contact, sends: list[tuple[datetime, str]], open_p: float, click_p: float,
                    lo: int = 0, hi: int = DAYS, late_open_p: float | None = None) -> None:
    """Opens and clicks on the sends; ``late_open_p`` applies outside [lo, hi] days."""
    rng = c.rng
    for sent, name in sends:
        if c.unsubscribed and sent > c.unsubscribed:
            break
        inside = lo <= (sent.date() - START).days <= hi
        p = open_p if inside else (late_open_p or 0.0)
        if rng.random() >= p:
            continue
        opened = sent + timedelta(minutes=rng.randint(5, 60 * 40))
        c.add(opened, "opened", "email", name, "email")
        clicks = 0
        while rng.random() < (click_p if clicks == 0 else click_p / 2) and clicks < 3:
            clicks += 1
            c.add(opened + timedelta(minutes=rng.randint(0, 4) + clicks), "clicked", "campaign",
                  name, "email")


def session(c: Contact, at: datetime, pages: Iterable[str], channel: str) -> datetime:
    for name in pages:
        c.add(at, "visited", "page", name, channel)
        at += timedelta(minutes=c.rng.randint(1, 6))
    return at


def browse(c: Contact, n: int, lo: int, hi: int, pricing_p: float, blog_only: bool = False
           ) -> None:
    rng = c.rng
    for _ in range(n):
        at = moment(rng, some_day(rng, lo, hi))
        channel = rng.choices(["web", "social", "ads", "email"], weights=[60, 15, 12, 13])[0]
        if blog_only:
            pages = rng.sample(BLOG, rng.randint(1, 2))
        else:
            pages = rng.sample(BLOG + SITE, rng.randint(1, 3))
            if rng.random() < pricing_p:
                pages.insert(rng.randint(0, len(pages)), "pricing")
        session(c, at, pages, channel)


def ad_arrival(c: Contact, d: date, landing: str | None = None) -> datetime:
    rng = c.rng
    channel = rng.choice(["ads", "social"])
    at = moment(rng, d)
    c.add(at, "clicked", "ad", rng.choice(ADS[channel]), channel)
    at += timedelta(minutes=1)
    c.add(at, "visited", "landing", landing or rng.choice(LANDINGS), channel)
    return at + timedelta(minutes=rng.randint(1, 4))


def download(c: Contact, at: datetime, asset: str, gated: bool = False) -> None:
    channel = "web"
    if gated:
        c.add(at, "submitted", "form", "content-gate", channel)
    c.add(at + timedelta(minutes=1), "downloaded", "asset", asset, channel)


def webinar(c: Contact, lo: int, hi: int, attend_p: float = 0.75) -> None:
    rng = c.rng
    options = [(d, n) for d, n in WEBINARS.items() if lo <= (d - START).days <= hi]
    if not options:
        return
    d, name = rng.choice(options)
    reg = moment(rng, d - timedelta(days=rng.randint(1, 12)))
    c.add(reg, "submitted", "form", "webinar-registration", "email")
    if rng.random() < attend_p:
        c.add(datetime(d.year, d.month, d.day, 16, rng.randint(0, 9), tzinfo=UTC), "attended",
              "webinar", name, "events")


def trade_show(c: Contact) -> None:
    d, name = c.rng.choice(list(TRADE_SHOWS.items()))
    c.add(moment(c.rng, d, 9, 17), "attended", "event", name, "events")


def unsubscribe(c: Contact, lo: int, hi: int) -> None:
    at = moment(c.rng, some_day(c.rng, lo, hi))
    c.unsubscribed = at
    c.add(at, "unsubscribed", "email", "newsletter", "email")


def behave(c: Contact, sends: list[tuple[datetime, str]]) -> None:
    rng = c.rng
    p = c.persona
    if p == "loyal":  # opens everything, clicks a lot, reads the blog; never pricing, never a demo
        email_behaviour(c, sends, rng.uniform(0.85, 0.98), rng.uniform(0.35, 0.7))
        browse(c, rng.randint(3, 9), 0, DAYS, 0.0, blog_only=True)
        if rng.random() < 0.3:
            download(c, moment(rng, some_day(rng, 0, DAYS)), "ebook-lead-scoring-guide")
    elif p == "hot":  # a recent, fast journey that ends with sales
        start = DAYS - rng.randint(25, 45)
        email_behaviour(c, sends, 0.5, 0.35, start - 60, DAYS, late_open_p=0.2)
        at = ad_arrival(c, some_day(rng, start, start + 3))
        download(c, at, rng.choice(ASSETS[:3]), gated=True)
        browse(c, rng.randint(3, 6), start, DAYS, 0.45)
        for _ in range(rng.randint(2, 4)):  # they keep coming back to pricing
            session(c, moment(rng, some_day(rng, DAYS - 28, DAYS - 1)),
                    ["features", "pricing"] if rng.random() < 0.5 else ["pricing"], "web")
        if rng.random() < 0.7:
            download(c, moment(rng, some_day(rng, start + 5, DAYS)), rng.choice(ASSETS[1:]))
        if rng.random() < 0.6:
            webinar(c, start - 20, DAYS, attend_p=0.9)
        last = moment(rng, some_day(rng, DAYS - 10, DAYS))
        if rng.random() < 0.4:
            c.add(last - timedelta(minutes=3), "chatted", "chatbot", "pricing-bot", "web")
            c.add(last, "chatted", "chatbot", "book-a-meeting", "web")
        else:
            session(c, last, ["pricing"], "web")
            c.add(last + timedelta(minutes=4), "submitted", "form", "demo-request", "web")
    elif p in ("evaluator", "cooling"):
        hi = DAYS if p == "evaluator" else rng.randint(45, 75)
        if p == "cooling":
            email_behaviour(c, sends, rng.uniform(0.4, 0.8), 0.35, 0, hi, late_open_p=0.08)
        else:
            email_behaviour(c, sends, rng.uniform(0.2, 0.6), 0.3)
        browse(c, rng.randint(2, 8), 0, hi, rng.uniform(0.1, 0.35))
        for asset in rng.sample(ASSETS, rng.randint(0, 3)):
            download(c, moment(rng, some_day(rng, 0, hi)), asset)
        for _ in range(rng.choice([0, 0, 1, 1, 2])):
            webinar(c, 0, hi)
        if rng.random() < 0.2:
            ad_arrival(c, some_day(rng, 0, hi))
        if rng.random() < 0.15:
            trade_show(c)
        if rng.random() < 0.2:
            c.add(moment(rng, some_day(rng, 0, hi)), "chatted", "chatbot", "support-bot", "web")
        if rng.random() < 0.15:
            c.add(moment(rng, some_day(rng, 0, hi)), "submitted", "form", "contact-us", "web")
        if p == "evaluator" and rng.random() < 0.04:
            unsubscribe(c, 60, DAYS)
    elif p == "casual":
        if rng.random() < 0.05:
            unsubscribe(c, 0, DAYS)
        email_behaviour(c, sends, rng.uniform(0.03, 0.3), 0.15)
        browse(c, rng.choice([0, 0, 1, 1, 2, 3]), 0, DAYS, 0.05)
        if rng.random() < 0.15:
            download(c, moment(rng, some_day(rng, 0, DAYS)), rng.choice(ASSETS))
        if rng.random() < 0.05:
            trade_show(c)
    elif p == "dormant":
        if rng.random() < 0.2:
            unsubscribe(c, 0, DAYS)
        email_behaviour(c, sends, rng.uniform(0.0, 0.06), 0.1)
    elif p == "new":  # came in lately through an ad or a post
        start = DAYS - rng.randint(3, 20)
        at = ad_arrival(c, day(start))
        download(c, at, rng.choice(ASSETS[:3]), gated=True)
        email_behaviour(c, [s for s in sends if s[0].date() > day(start)], 0.7, 0.4)
        browse(c, rng.randint(0, 3), start, DAYS, 0.25)
    elif p == "student":  # researching a thesis: takes everything, will never buy
        email_behaviour(c, sends, rng.uniform(0.3, 0.6), 0.4)
        browse(c, rng.randint(3, 6), 0, DAYS, 0.3)
        for asset in rng.sample(ASSETS, rng.randint(2, 4)):
            download(c, moment(rng, some_day(rng, 0, DAYS)), asset)
        webinar(c, 0, DAYS, attend_p=1.0)
        if rng.random() < 0.5:
            c.add(moment(rng, some_day(rng, DAYS - 20, DAYS)), "submitted", "form",
                  "demo-request", "web")
    elif p == "competitor":  # watching prices and features
        email_behaviour(c, sends, 0.6, 0.2)
        for _ in range(rng.randint(5, 8)):
            session(c, moment(rng, some_day(rng, 0, DAYS)), ["pricing", "features"], "web")
        for asset in ASSETS:
            download(c, moment(rng, some_day(rng, 0, DAYS)), asset)
        webinar(c, 0, DAYS, attend_p=1.0)
        c.add(moment(rng, some_day(rng, DAYS - 30, DAYS)), "chatted", "chatbot", "pricing-bot",
              "web")


# ---- the whole data set ---------------------------------------------------------------------


def build(seed: int = DEFAULT_SEED, n_contacts: int = 300, n_accounts: int = 40) -> Dataset:
    """The data set for a seed, in memory; ``write`` puts it on disk."""
    if not 1 <= n_accounts <= len(COMPANIES):
        raise SystemExit(f"--accounts must be between 1 and {len(COMPANIES)}")
    rng = random.Random(seed)
    accounts = make_accounts(rng, n_accounts)
    people = make_contacts(rng, n_contacts, accounts)
    sends = email_sends()
    raw: list[tuple[datetime, str, str, str, str, str]] = []
    personas: dict[str, str] = {}
    for persona, rec in people:
        # Each contact gets its own generator, so one persona's tweaks leave the others alone.
        c = Contact(rec["id"], persona, random.Random(f"{seed}:{rec['id']}"))
        behave(c, sends)
        raw += c.events
        personas[rec["id"]] = persona
    ghost = Contact(DELETED_CONTACT, "deleted", random.Random(f"{seed}:deleted"))
    email_behaviour(ghost, sends[-4:], 1.0, 0.5)
    raw += ghost.events[:3]
    raw.sort()
    events = []
    for i, (at, cid, action, obj, name, channel) in enumerate(raw, 1):
        events.append({"id": f"e{i:05d}", "contact": cid, "at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "action": action, "object": obj, "name": name, "channel": channel})
    return Dataset(accounts, [rec for _, rec in people], events, personas)


def dump(records: Iterable[dict[str, Any]]) -> bytes:
    lines = (json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records)
    return "".join(line + "\n" for line in lines).encode("utf-8")


def write(data: Dataset, out: Path) -> dict[str, int]:
    """Write contacts.ndjson, accounts.ndjson and events.ndjson; return each file's size."""
    out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for name, records in (("contacts", data.contacts), ("accounts", data.accounts),
                          ("events", data.events)):
        blob = dump(records)
        (out / f"{name}.ndjson").write_bytes(blob)
        sizes[f"{name}.ndjson"] = len(blob)
    return sizes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (%(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--contacts", type=int, default=300, help="number of contacts")
    parser.add_argument("--accounts", type=int, default=40, help="number of accounts")
    args = parser.parse_args(argv)
    data = build(args.seed, args.contacts, args.accounts)
    sizes = write(data, args.out)
    print(f"{len(data.contacts)} contacts, {len(data.accounts)} accounts, {len(data.events)} "
          f"events from {START} to {END} -> {args.out}")
    for name, size in sizes.items():
        print(f"  {name:<16} {size:>9,} bytes")


if __name__ == "__main__":
    main()
