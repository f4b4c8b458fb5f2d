"""The account block compiled to SQL: the contacts' results, memberships and the hierarchy in,
one row per account out, with exactly the meaning of leaddsl.accounts (the reference).

The query reads four relations:

- ``results``: the contact query's rows (``id``, ``total``, ``score:<model>``, ``qualified``,
  ``disqualified``, ``last_t``, ``where:<k>``; see leaddsl.sql.compiler);
- ``members``: ``account``, ``contact``, ``role`` (the committee role trimmed and case-folded,
  NULL when there is none) and ``pos`` (the contact's place in the account's member list);
- ``accounts``: ``id``, ``pos`` (output order) and the normalized columns of each account
  attribute the block reads (as the contact query reads contact attributes);
- ``hierarchy``: the parent links closed transitively, ``(ancestor, descendant, depth)``,
  with a ``depth`` 0 row for every account (see :func:`account_tables`).

How the Python evaluator's steps map to SQL:

- an account's **own** pool is its members that are not disqualified; its aggregates, member
  tests and condition rules over that pool give its own scores;
- its **group** is the own pools of the accounts it counts: itself and, when rolling up, every
  descendant reached through subsidiaries that are not disqualified. Rolled-up scores are the
  sum (or max) of the own scores over those accounts; ladders, qualify and disqualify read them
  and test the group's contacts.

Whether a subsidiary is disqualified depends on its own group, so with a rollup and disqualify
lines accounts are scored by height (leaves first): :meth:`AccountSQL.query` scores one height
given the accounts already scored, :meth:`AccountSQL.unrolled` chains a fixed number of heights
in one query. Without disqualify lines (or without a rollup) one pass scores every account.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from .. import plan as P
from .compiler import (
    ContactSQL,
    _sum,
    and_,
    case,
    coalesce,
    col,
    count_if,
    dbl,
    holds,
    ident,
    lit,
    member_conditions,
    num,
    or_,
    plan_conditions,
    prepend,
    walk,
)

if TYPE_CHECKING:
    from ..engine import Engine

__all__ = ["AccountSQL", "account_tables", "account_attributes", "account_row", "folded_role"]

Key = Any  # what a pool measure is: an aggregate node, ("any", where, qualified), ...


def account_attributes(account: P.AccountPlan) -> tuple[str, ...]:
    """The account attributes the block reads (not the contact ones of its where clauses)."""
    names: dict[str, None] = {}
    for cond in plan_conditions(account.plan):
        for node in walk(cond, into_where=False):
            subject = getattr(node, "subject", None)
            if isinstance(subject, P.Attr):
                names.setdefault(subject.name, None)
    return tuple(names)


def folded_role(role: object) -> str | None:
    """A committee role as the account rules compare it (accounts._role)."""
    if not isinstance(role, str) or not role.strip():
        return None
    return role.strip().casefold()


def account_tables(
    engine: Engine,
) -> tuple[list[tuple[str, str, str | None, int]], list[tuple[str, str, int]]]:
    """The ``members`` and ``hierarchy`` rows of an engine's account graph.

    The hierarchy is the engine graph's parent links closed transitively: each account's chain
    up to its top account, walked once and shared by the accounts below it (the engine keeps
    the parent links beside its networkx graph). A cycle, which the engine refuses when it
    loads accounts, raises GraphError here too.
    """
    from ..errors import GraphError

    graph = engine.graph
    ids = engine.account_ids()
    folded: dict[object, str | None] = {}

    def fold(role: object) -> str | None:
        try:  # few distinct roles: fold each once
            return folded[role] if role in folded else folded.setdefault(role, folded_role(role))
        except TypeError:  # not hashable (a list): never a role
            return None

    # (Read in load order, where the records lie together in memory: far fewer cache misses
    # than in member order.)
    role_of = {cid: fold(rec.get("role")) for cid, rec in engine._attrs.items()}
    members = [(aid, cid, role_of[cid], pos) for aid in ids
               for pos, cid in enumerate(graph.members_unsorted(aid))]
    parent = {aid: graph.parent(aid) for aid in ids}
    chains: dict[str, list[str]] = {}  # account -> itself, its parent, ... up to the top

    def chain(aid: str) -> list[str]:
        walked: list[str] = []
        up: str | None = aid
        while up is not None and up not in chains:
            if up in walked:
                loop = walked[walked.index(up):]
                raise GraphError("accounts form a parent cycle: " + " -> ".join([*loop, up]))
            walked.append(up)
            up = parent.get(up)
        rest = [] if up is None else chains[up]
        for k in range(len(walked) - 1, -1, -1):
            rest = chains[walked[k]] = [walked[k], *rest]
        return chains[aid]

    hierarchy = [(ancestor, aid, depth) for aid in ids
                 for depth, ancestor in enumerate(chain(aid))]
    return members, hierarchy


def _pool_columns(by: Sequence[str], tests: int) -> list[str]:
    return ["contact", "role", "pos", "total", *[f"score:{m}" for m in by], "qualified",
            "last_t", *[f"where:{k}" for k in range(tests)]]


class AccountSQL(ContactSQL):
    """Builds the account query of a script's account block.

    ``as_of`` / ``as_of_sql``: the evaluation time (for ``inactive for``). ``dialect``: where
    the SQL runs ("spark" keeps list order with a sort; other dialects order the aggregate).
    """

    def __init__(
        self,
        account: P.AccountPlan,
        *,
        results: str = "results",
        members: str = "members",
        accounts: str = "accounts",
        hierarchy: str = "hierarchy",
        as_of: float | None = None,
        as_of_sql: exp.Expr | None = None,
        dialect: str = "duckdb",
    ) -> None:
        super().__init__(account.plan, as_of=as_of, as_of_sql=as_of_sql)
        self.account = account
        self.attributes = account_attributes(account)
        self.results, self.members_table = results, members
        self.accounts_table, self.hierarchy = accounts, hierarchy
        self.dialect = dialect
        self._tests = {w: k for k, w in enumerate(member_conditions(account))}
        self._weights = {r.strip().casefold(): w for r, w in account.weights}
        self._measures: dict[Key, str] = {}
        self._prefix = "o:"  # which pool a member test reads: o: own, g: group
        self._by: dict[str, None] = {}
        self._built: tuple[list[exp.Expr], list[exp.Expr], list[exp.Expr]] | None = None

    @property
    def needs_levels(self) -> bool:
        """Whether a subsidiary's disqualification decides what its parent counts."""
        return self.account.rollup != "none" and bool(self.plan.disqualify)

    # ---- member tests --------------------------------------------------------------------

    def _where(self, where: P.Cond | None) -> exp.Expr:
        return exp.true() if where is None else col(f"where:{self._tests[where]}")

    def _measure(self, key: Key) -> exp.Expr:
        """A measure of the pool being read (own or group), named once for both pools."""
        if key not in self._measures:
            self._measures[key] = f"x{len(self._measures)}"
            if isinstance(key, P.Agg) and key.by != "score":
                self._by.setdefault(key.by, None)
        return col(self._prefix + self._measures[key])

    def cond(self, c: P.Cond) -> exp.Expr:
        match c:
            case P.AggCmp(aggregate=agg, op=op, value=value):
                from .compiler import compare

                return holds(compare(op, self._measure(agg), num(value)))  # NULL: no value
            case P.AnyMember(where=where, qualified=qualified):
                return self._measure(("any", where, qualified))
            case P.AllMembers(where=where):
                return self._measure(("all", where))
            case P.Inactive(window=w):
                last = self._measure(("last",))
                quiet = exp.GT(this=exp.Sub(this=self._asof(), expression=last.copy()),
                               expression=num(w))
                return or_([exp.Is(this=last, expression=exp.Null()), holds(quiet)])
        return super().cond(c)

    # ---- what a pool measures -------------------------------------------------------------

    def _weight(self, half_life: float) -> exp.Expr:  # pragma: no cover - no decay here
        raise AssertionError("account blocks have no event rules")

    def _role_weight(self) -> exp.Expr:
        if not self._weights:
            return num(1.0)
        whens = [(exp.EQ(this=col("role"), expression=lit(r)), num(w))
                 for r, w in self._weights.items()]
        return case(whens, num(1.0))

    def _pool_values(self) -> list[exp.Expr]:
        """Per contact of a pool, each aggregate's value (after the role's weight), weight and
        whether it takes part."""
        out: list[exp.Expr] = []
        for key, name in self._measures.items():
            if not isinstance(key, P.Agg):
                continue
            value = col("total") if key.by == "score" else col(f"score:{key.by}")
            weight = self._role_weight()
            out.append(exp.alias_(exp.Mul(this=weight.copy(), expression=value), f"{name}v",
                                  quoted=True))
            out.append(exp.alias_(weight.copy(), f"{name}w", quoted=True))
            taking = self._where(key.where)
            if self._weights:  # a weight of 0 leaves the contact out
                taking = and_([taking, exp.NEQ(this=weight.copy(), expression=num(0.0))])
            out.append(exp.alias_(taking, f"{name}i", quoted=True))
        return out

    def _pool_ranks(self) -> list[exp.Expr]:
        """For ``top N``: each contact's rank among the ones taking part (by value, then id)."""
        out: list[exp.Expr] = []
        for key, name in self._measures.items():
            if isinstance(key, P.Agg) and key.top is not None:
                rank = exp.Window(
                    this=exp.RowNumber(),
                    partition_by=[col("owner"), col(f"{name}i")],
                    order=exp.Order(expressions=[
                        exp.Ordered(this=col(f"{name}v"), desc=True),
                        exp.Ordered(this=col("contact")),
                    ]),
                )
                out.append(exp.alias_(rank, f"{name}r", quoted=True))
        return out

    def _pool_measures(self) -> list[exp.Expr]:
        """The aggregate of each measure over a pool, grouped by ``owner``."""
        out: list[exp.Expr] = []
        for key, name in self._measures.items():
            out.append(exp.alias_(self._aggregate(key, name), name, quoted=True))
        return out

    def _aggregate(self, key: Key, name: str) -> exp.Expr:
        if isinstance(key, P.CountOf):
            return dbl(count_if(self._where(key.where)))
        if isinstance(key, P.RolesCount):
            taking = and_([exp.Not(this=exp.Is(this=col("role"), expression=exp.Null())),
                           exp.GT(this=col("total"), expression=num(0.0)),
                           self._where(key.where)])
            distinct = exp.Count(this=exp.Distinct(expressions=[col("role")]))
            return dbl(exp.Filter(this=distinct, expression=exp.Where(this=taking)))
        if isinstance(key, P.Agg):
            taking = col(f"{name}i")
            if key.top is not None:
                taking = and_([taking, exp.LTE(this=col(f"{name}r"),
                                               expression=exp.Literal.number(key.top))])

            def over(fn: type[exp.Expr], what: str) -> exp.Expr:
                return exp.Filter(this=fn(this=col(f"{name}{what}")),
                                  expression=exp.Where(this=taking.copy()))

            if key.fn == "sum":
                return over(exp.Sum, "v")
            if key.fn == "avg":
                weights = over(exp.Sum, "w")
                return case([(exp.GT(this=weights, expression=num(0.0)),
                              exp.Div(this=over(exp.Sum, "v"), expression=weights.copy()))])
            return over(exp.Max if key.fn == "max" else exp.Min, "v")
        if key[0] == "any":
            _, where, qualified = key
            test = self._where(where)
            if qualified:
                test = and_([col("qualified"), test])
            return exp.GT(this=count_if(test), expression=num(0.0))
        if key[0] == "all":
            failing = count_if(exp.Not(this=self._where(key[1])))
            return and_([exp.GT(this=exp.Count(this=exp.Star()), expression=num(0.0)),
                         exp.EQ(this=failing, expression=num(0.0))])
        assert key == ("last",)
        return exp.Max(this=col("last_t"))

    @staticmethod
    def _empty(key: Key) -> exp.Expr | None:
        """A measure's value over an empty pool (None: NULL, no value)."""
        if isinstance(key, (P.CountOf, P.RolesCount)) or (
                isinstance(key, P.Agg) and key.fn == "sum"):
            return num(0.0)
        if isinstance(key, tuple) and key[0] in ("any", "all"):
            return exp.false()
        return None

    def _joined(self, prefix: str, table: str) -> list[exp.Expr]:
        """The measures of a pool's CTE as columns of the account row."""
        out = []
        for key, name in self._measures.items():
            value: exp.Expr = col(name, table)
            empty = self._empty(key)
            if empty is not None:
                value = coalesce(value, empty)
            out.append(exp.alias_(value, prefix + name, quoted=True))
        return out

    def _pool(self, owner: exp.Expr, source: exp.Expr) -> exp.Select:
        """The contacts an aggregate looks at: the members that are not disqualified, each
        under the account (``owner``) whose pool it is in."""
        cols = [exp.alias_(owner, "owner", quoted=True),
                *[col(c, "m") for c in _pool_columns(list(self._by), len(self._tests))]]
        return exp.select(*cols).from_(source).where(exp.Not(this=col("disqualified", "m")))

    def _valued(self, pool: str) -> exp.Select:
        inner = exp.select(exp.Star(), *self._pool_values()).from_(ident(pool))
        # Ranks over the values in a select of their own (Spark reads no alias in a window).
        inner = exp.select(exp.Star(), *self._pool_ranks()).from_(
            exp.Subquery(this=inner, alias=exp.TableAlias(this=ident("q"))))
        return exp.select(col("owner"), *self._pool_measures()).from_(
            exp.Subquery(this=inner, alias=exp.TableAlias(this=ident("p")))
        ).group_by(col("owner"))

    # ---- the query -------------------------------------------------------------------------

    def _compile(self) -> tuple[list[exp.Expr], list[exp.Expr], list[exp.Expr]]:
        """The account block's expressions: condition hits (own pool), own score per model,
        and the outputs (group pool); every pool measure is known afterwards."""
        if self._built is None:
            self._stage, self._prefix = "rules", "o:"
            hits = [self.cond(r.condition) for r in self.plan.condition_rules]
            own: dict[str, list[exp.Expr]] = {m.name: [] for m in self.plan.models}
            for a in self.plan.aggregates:
                own[a.model].append(coalesce(self._measure(a.aggregate), num(0.0)))
            for k, r in enumerate(self.plan.condition_rules):
                own[r.model].append(case([(col(f"h{k}"), num(r.points))], num(0.0)))
            scores = [exp.alias_(_sum(parts) if parts else num(0.0), f"own:{m}", quoted=True)
                      for m, parts in own.items()]
            flat = [p.copy() for parts in own.values() for p in parts]
            scores.append(exp.alias_(_sum(flat) if flat else num(0.0), "own_total",
                                     quoted=True))
            self._stage, self._prefix = "scores", "g:"
            outputs: list[exp.Expr] = [col("id"), col("pos")]
            outputs += [col(f"score:{m.name}") for m in self.plan.models]
            outputs.append(col("total"))
            outputs += self._outcomes()
            self._built = ([exp.alias_(h, f"h{k}", quoted=True) for k, h in enumerate(hits)],
                           scores, outputs)
        return self._built

    def _shared(self) -> list[tuple[str, exp.Expr]]:
        """CTEs every height shares: members with their results, own pools, own scores."""
        hits, scores, _ = self._compile()
        r = self.results
        m = exp.select(
            col("account", "mb"), col("contact", "mb"), col("role", "mb"), col("pos", "mb"),
            *[col(c, "r") for c in ["total", *[f"score:{b}" for b in self._by], "qualified",
                                   "disqualified", "last_t",
                                   *[f"where:{k}" for k in range(len(self._tests))]]],
        ).from_(tbl(self.members_table, "mb")).join(
            tbl(r, "r"),
            on=exp.EQ(this=col("id", "r"), expression=col("contact", "mb")))
        m_src = tbl("acc_m", "m")
        own_pool = self._pool(col("account", "m"), m_src)
        base = exp.select(exp.Column(this=exp.Star(), table=ident("a")),
                          *self._joined("o:", "v")).from_(
            tbl(self.accounts_table, "a")).join(
            tbl("acc_own_vals", "v"),
            on=exp.EQ(this=col("owner", "v"), expression=col("id", "a")), join_type="left")
        ruled = exp.select(exp.Star(), *hits).from_(ident("acc_base"))
        own = exp.select(exp.Star(), *scores).from_(ident("acc_ruled"))
        height = exp.select(exp.alias_(col("ancestor"), "id", quoted=True),
                            exp.alias_(exp.Max(this=col("depth")), "height", quoted=True)).from_(
            exp.to_table(self.hierarchy, quoted=True)).group_by(col("ancestor"))
        return [("acc_m", m), ("acc_own_pool", own_pool),
                ("acc_own_vals", self._valued("acc_own_pool")), ("acc_base", base),
                ("acc_ruled", ruled), ("acc_own", own), ("acc_height", height),
                ("acc_lists", self._lists())]

    def _lists(self) -> exp.Select:
        """Per account: its members in order, the eligible ones, its parent, its subsidiaries."""
        members = exp.select(
            col("account"),
            exp.alias_(self._ordered(col("contact"), col("pos"), None), "members", quoted=True),
            exp.alias_(self._ordered(col("contact"), col("pos"),
                                     exp.Not(this=col("disqualified"))), "eligible",
                       quoted=True),
        ).from_(ident("acc_m")).group_by(col("account"))
        one = exp.EQ(this=col("depth"), expression=exp.Literal.number(1))
        kids = exp.select(
            col("ancestor"),
            exp.alias_(self._ordered(col("descendant"), col("descendant"), None),
                       "subsidiaries", quoted=True),
        ).from_(exp.to_table(self.hierarchy, quoted=True)).where(one).group_by(col("ancestor"))
        parents = exp.select(col("descendant"), col("ancestor")).from_(
            exp.to_table(self.hierarchy, quoted=True)).where(one.copy())

        def empty() -> exp.Expr:
            return exp.cast(exp.Array(expressions=[]), exp.DataType.build("ARRAY<TEXT>"))

        def table(name: str) -> exp.Expr:
            return exp.alias_(exp.Subquery(this=name_of[name]), name, table=True, quoted=True)

        name_of: dict[str, exp.Expr] = {"mem": members, "kid": kids, "par": parents}
        return (
            exp.select(
                exp.alias_(col("id", "a"), "id", quoted=True),
                exp.alias_(coalesce(col("members", "mem"), empty()), "members", quoted=True),
                exp.alias_(coalesce(col("eligible", "mem"), empty()), "eligible", quoted=True),
                exp.alias_(col("ancestor", "par"), "parent", quoted=True),
                exp.alias_(coalesce(col("subsidiaries", "kid"), empty()), "subsidiaries",
                           quoted=True),
            )
            .from_(tbl(self.accounts_table, "a"))
            .join(table("mem"), on=exp.EQ(this=col("account", "mem"), expression=col("id", "a")),
                  join_type="left")
            .join(table("kid"), on=exp.EQ(this=col("ancestor", "kid"), expression=col("id", "a")),
                  join_type="left")
            .join(table("par"), on=exp.EQ(this=col("descendant", "par"),
                                          expression=col("id", "a")), join_type="left")
        )

    def _ordered(self, value: exp.Expr, key: exp.Expr, where: exp.Expr | None) -> exp.Expr:
        """A list of ``value`` ordered by ``key`` (Spark's collect_list keeps no order: the
        pairs are sorted, then the values taken out)."""
        if self.dialect == "spark":
            pairs = exp.ArrayAgg(this=exp.Struct(expressions=[
                exp.PropertyEQ(this=exp.to_identifier("k"), expression=key),
                exp.PropertyEQ(this=exp.to_identifier("v"), expression=value)]))
            agg: exp.Expr = pairs if where is None else exp.Filter(
                this=pairs, expression=exp.Where(this=where))
            x = exp.to_identifier("x")
            return exp.Transform(
                this=exp.ArraySort(this=agg),
                expression=exp.Lambda(this=exp.Dot(this=x.copy(),
                                                   expression=exp.to_identifier("v")),
                                      expressions=[x]))
        # (Keys are never NULL; NULLS FIRST is what BigQuery can say.)
        ordered = exp.ArrayAgg(this=exp.Order(
            this=value, expressions=[exp.Ordered(this=key, nulls_first=True)]))
        return ordered if where is None else exp.Filter(this=ordered,
                                                        expression=exp.Where(this=where))

    def _level(self, tag: str, level: int | None,
               done: exp.Expr | None) -> tuple[list[tuple[str, exp.Expr]], exp.Select]:
        """The CTEs scoring the accounts of one height (None: every account, nothing blocked)
        and the select of their output rows. ``done``: (id, disqualified) of lower heights."""
        _, _, outputs = self._compile()
        h = tbl(self.hierarchy, "c")
        if self.account.rollup == "none":
            reach = exp.select(exp.alias_(col("id"), "ancestor", quoted=True),
                               exp.alias_(col("id"), "descendant", quoted=True)).from_(
                exp.to_table(self.accounts_table, quoted=True))
        else:
            reach = exp.select(col("ancestor", "c"), col("descendant", "c")).from_(h)
            if done is not None:
                # Blocked: a disqualified account on the way up, below the ancestor.
                c1 = tbl(self.hierarchy, "c1")
                c2 = tbl(self.hierarchy, "c2")
                blocked = exp.select(exp.Literal.number(1)).from_(c1).join(
                    c2, on=exp.EQ(this=col("ancestor", "c2"), expression=col("descendant", "c1"))
                ).join(exp.alias_(done if isinstance(done, exp.Subquery)
                                  else exp.Subquery(this=done), "d", table=True, quoted=True),
                       on=exp.EQ(this=col("id", "d"), expression=col("descendant", "c1"))
                       ).where(and_([
                           exp.EQ(this=col("ancestor", "c1"), expression=col("ancestor", "c")),
                           exp.EQ(this=col("descendant", "c2"),
                                  expression=col("descendant", "c")),
                           exp.GTE(this=col("depth", "c1"), expression=exp.Literal.number(1)),
                           col("disqualified", "d"),
                       ]))
                reach = reach.where(exp.Not(this=exp.Exists(this=blocked)))
        if level is not None and self.account.rollup != "none":
            at = exp.select(col("id")).from_(ident("acc_height")).where(
                exp.EQ(this=col("height"), expression=exp.Literal.number(level)))
            reach = reach.where(col("ancestor", "c").isin(query=at))
        models = [m.name for m in self.plan.models]
        o = tbl("acc_own", "o")
        rch = tbl(f"acc_reach{tag}", "r")
        own_of = exp.EQ(this=col("id", "o"), expression=col("descendant", "r"))
        if self.account.rollup == "max":
            rolled_cols = [exp.alias_(exp.Max(this=col(f"own:{m}", "o")), f"score:{m}",
                                      quoted=True) for m in models]
        else:
            rolled_cols = [exp.alias_(exp.Sum(this=col(f"own:{m}", "o")), f"score:{m}",
                                      quoted=True) for m in models]
            rolled_cols.append(exp.alias_(exp.Sum(this=col("own_total", "o")), "total",
                                          quoted=True))
        rolled = exp.select(exp.alias_(col("ancestor", "r"), "rid", quoted=True),
                            *rolled_cols).from_(rch).join(o, on=own_of).group_by(
            col("ancestor", "r"))
        m_src = tbl("acc_m", "m")
        group_pool = self._pool(col("ancestor", "r"), m_src).join(
            rch.copy(), on=exp.EQ(this=col("account", "m"), expression=col("descendant", "r")))
        if self.account.rollup == "max":
            total = _sum([col(f"score:{m}", "ro") for m in models]) if models else num(0.0)
        else:
            total = col("total", "ro")
        final = exp.select(
            exp.Column(this=exp.Star(), table=ident("o")),
            *[col(f"score:{m}", "ro") for m in models],
            exp.alias_(total, "total", quoted=True),
            *self._joined("g:", "g"),
        ).from_(o.copy()).join(
            tbl(f"acc_rolled{tag}", "ro"),
            on=exp.EQ(this=col("rid", "ro"), expression=col("id", "o"))).join(
            tbl(f"acc_grp_vals{tag}", "g"),
            on=exp.EQ(this=col("owner", "g"), expression=col("id", "o")), join_type="left")
        out = exp.select(*[e.copy() for e in outputs]).from_(ident(f"acc_final{tag}"))
        ctes: list[tuple[str, exp.Expr]] = [
            (f"acc_reach{tag}", reach), (f"acc_rolled{tag}", rolled),
            (f"acc_grp_pool{tag}", group_pool),
            (f"acc_grp_vals{tag}", self._valued(f"acc_grp_pool{tag}")),
            (f"acc_final{tag}", final),
        ]
        return ctes, out

    def _finish(self, rows: exp.Expr) -> exp.Select:
        """The output rows with the account's lists (in no particular order)."""
        _, _, outputs = self._compile()
        names = [o.alias_or_name for o in outputs]
        keep = [col(n, "s") for n in names if n != "pos"]
        lists = [col(n, "l") for n in ("members", "eligible", "parent", "subsidiaries")]
        return exp.select(*keep, *lists).from_(
            exp.alias_(exp.Subquery(this=rows), "s", table=True, quoted=True)).join(
            tbl("acc_lists", "l"),
            on=exp.EQ(this=col("id", "l"), expression=col("id", "s")))

    def query(self, level: int | None = None, done: str | None = None) -> exp.Select:
        """One pass: every account (``level`` None; right when :attr:`needs_levels` is false)
        or the accounts of one height, reading ``done`` (id, disqualified) for those below."""
        shared = self._shared()
        done_q = None if done is None else exp.select(col("id"), col("disqualified")).from_(
            exp.to_table(done, quoted=True))
        ctes, out = self._level("", level, done_q)
        return prepend(self._finish(out), [*shared, *ctes])

    def unrolled(self, levels: int) -> exp.Select:
        """Every height below ``levels`` in one query (for a warehouse); accounts higher up are
        left out. Without :attr:`needs_levels`, the one pass."""
        if not self.needs_levels:
            return self.query()
        shared = self._shared()
        ctes: list[tuple[str, exp.Expr]] = []
        outs: list[exp.Select] = []
        for h in range(levels):
            done = None
            if outs:
                union: exp.Expr = exp.select(col("id"), col("disqualified")).from_(
                    ident("acc_out0"))
                for k in range(1, h):
                    union = exp.union(union, exp.select(col("id"), col("disqualified")).from_(
                        ident(f"acc_out{k}")), distinct=False)
                done = exp.Subquery(this=union)
            level_ctes, out = self._level(str(h), h, done)
            ctes += level_ctes
            ctes.append((f"acc_out{h}", out))
            outs.append(exp.select(exp.Star()).from_(ident(f"acc_out{h}")))
        rows: exp.Expr = outs[0]
        for o in outs[1:]:
            rows = exp.union(rows, o, distinct=False)
        return prepend(self._finish(rows), [*shared, *ctes])


def tbl(name: str, alias: str) -> exp.Expr:
    """A table under an alias: FROM "name" AS "alias"."""
    return exp.alias_(exp.to_table(name, quoted=True), alias, table=True, quoted=True)


def account_row(
    row: Mapping[str, Any], models: Sequence[str], labels: Sequence[str], as_of: str | None
) -> dict[str, Any]:
    """A fetched account row as AccountResult.to_dict() gives it."""
    return {
        "id": row["id"],
        "total": float(row["total"]),
        "scores": {m: float(row[f"score:{m}"]) for m in models},
        "labels": {k: row[f"label:{k}"] for k in labels if row[f"label:{k}"] is not None},
        "qualified": bool(row["qualified"]),
        "disqualified": bool(row["disqualified"]),
        "reasons": list(row["reasons"] or []),
        "as_of": as_of,
        "members": list(row["members"] or []),
        "eligible": list(row["eligible"] or []),
        "parent": row["parent"],
        "subsidiaries": list(row["subsidiaries"] or []),
    }
