"""The batch backend's staging, checked against the plain definitions it speeds up.

- ``_normalized_columns`` (each distinct attribute value normalized once, then spread with an
  Arrow take) gives, row for row, what ``_normalized`` gives for each value;
- ``account_tables`` (the parent chains walked once and shared) gives the members of the
  engine graph in linking order with their folded roles, and the hierarchy that networkx's
  shortest-path lengths over the parent links give.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import leaddsl

batch = pytest.importorskip("leaddsl.batch")
pa = pytest.importorskip("pyarrow")

from leaddsl.sql.accounts import account_tables, folded_role  # noqa: E402

# Values a contact attribute takes after check_contact: text (blank too), numbers (equal ints
# and floats), booleans (equal to 1 and 0 as dict keys), nothing, lists and objects.
values = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(["", "  ", "VP Sales", "vp sales", "Straße", "STRASSE", "1", "1.0"]),
    st.text(max_size=6),
    st.integers(-3, 3),
    st.sampled_from([0.0, -0.0, 1.0, 2.5, 1e20, 3.0]),
    st.lists(st.integers(0, 2), max_size=2),
    st.dictionaries(st.just("k"), st.integers(0, 1), max_size=1),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(values, max_size=12))
def test_normalized_columns_equal_one_value_at_a_time(column: list[Any]) -> None:
    arrays = batch._normalized_columns(column, pa)
    got = list(zip(*(a.to_pylist() for a in arrays), strict=True)) if column else []
    want = [batch._normalized(v) for v in column]
    assert got == want


@settings(max_examples=150, deadline=None)
@given(st.lists(values.filter(lambda v: isinstance(v, (str, int, float, type(None)))
                              and not isinstance(v, bool)), max_size=12))
def test_normalized_columns_of_plain_values_share_each_distinct_one(column: list[Any]) -> None:
    # Without booleans, lists or objects the column takes the shared path: equal numbers
    # (1 and 1.0, 0.0 and -0.0) and repeated texts are normalized once and spread.
    arrays = batch._normalized_columns(column, pa)
    got = list(zip(*(a.to_pylist() for a in arrays), strict=True))
    assert got == [batch._normalized(v) for v in column]


@st.composite
def account_graphs(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Accounts in a forest (each parent listed before or after its child), contacts named to
    an account or not, with roles of every kind."""
    n = draw(st.integers(1, 12))
    accounts = []
    for i in range(n):
        parent = draw(st.one_of(st.none(), st.integers(0, i - 1))) if i else None
        accounts.append({"id": f"a{i}", **({} if parent is None else {"parent": f"a{parent}"})})
    accounts = draw(st.permutations(accounts))
    roles = st.one_of(st.none(), st.sampled_from(["Decision Maker ", "decision maker", "user",
                                                  "", " ", "ß"]), st.integers(0, 2),
                      st.lists(st.just("x"), max_size=1))
    contacts = []
    for j in range(draw(st.integers(0, 25))):
        rec: dict[str, Any] = {"id": f"c{j}"}
        if draw(st.booleans()):
            rec["account"] = f"a{draw(st.integers(0, n - 1))}"
        role = draw(roles)
        if role is not None:
            rec["role"] = role
        contacts.append(rec)
    return accounts, contacts


@settings(max_examples=150, deadline=None)
@given(account_graphs())
def test_account_tables_close_the_hierarchy_as_networkx_does(
    graph: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    accounts, contacts = graph
    engine = leaddsl.Engine(leaddsl.compile("when visited: +1"))
    engine.load(accounts=accounts, contacts=contacts)
    members, hierarchy = account_tables(engine)
    assert members == [
        (aid, cid, folded_role(engine._attrs[cid].get("role")), pos)
        for aid in engine.account_ids()
        for pos, cid in enumerate(engine.graph.members_unsorted(aid))
    ]
    up: nx.DiGraph[str] = nx.DiGraph()
    up.add_nodes_from(engine.account_ids())
    up.add_edges_from((a, p) for a in engine.account_ids()
                      if (p := engine.graph.parent(a)) is not None)
    want = {(ancestor, aid, depth) for aid in engine.account_ids()
            for ancestor, depth in nx.single_source_shortest_path_length(up, aid).items()}
    assert sorted(hierarchy) == sorted(want)


def test_account_tables_refuse_a_parent_cycle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine refuses a cycle when it loads accounts; should a graph hold one anyway, the
    closure stops with a GraphError naming it rather than walking forever."""
    engine = leaddsl.Engine(leaddsl.compile("when visited: +1"))
    engine.load(accounts=[{"id": "a"}, {"id": "b", "parent": "a"}, {"id": "c", "parent": "b"}])
    parents = {"a": "c", "b": "a", "c": "b"}
    monkeypatch.setattr(engine.graph, "parent", parents.get)
    with pytest.raises(leaddsl.GraphError, match=r"parent cycle: a -> c -> b -> a"):
        account_tables(engine)
