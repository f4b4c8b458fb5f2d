"""Small statistics for the closed loop: intervals, ranking quality, a regularised logistic fit.

Pure Python on purpose: a script has dozens of rules and a history thousands of outcomes, which
Newton's method solves in a few iterations of a d×d system, so numpy would add a dependency
for no measurable gain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

__all__ = ["wilson", "auc", "log_loss", "Logistic", "fit_logistic", "cross_fitted", "solve"]

Z95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); (0, 1) without trials.

    Chosen over the textbook normal interval, which collapses to a point at 0 or n successes
    and leaves [0, 1] on small segments, exactly the segments a report must not overstate.
    """
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    # At 0 or n successes an end equals p exactly; rounding must not put p outside.
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """The probability that a random won case scores above a random lost one (ties half).

    None when there are no won or no lost cases. Rank-based (Mann–Whitney), so O(n log n).
    """
    pairs = sorted(zip(scores, labels, strict=True), key=lambda p: p[0])
    n_pos = sum(1 for _, y in pairs if y)
    n_neg = len(pairs) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mid = (i + 1 + j) / 2  # average 1-based rank of a run of ties
        rank_sum += mid * sum(1 for k in range(i, j) if pairs[k][1])
        i = j
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def log_loss(probabilities: Sequence[float], labels: Sequence[bool]) -> float:
    """Mean negative log-likelihood of the labels (natural log), probabilities clipped."""
    if not labels:
        return math.nan
    eps = 1e-12
    total = 0.0
    for p, y in zip(probabilities, labels, strict=True):
        p = min(1 - eps, max(eps, p))
        total -= math.log(p if y else 1 - p)
    return total / len(labels)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


@attrs.frozen
class Logistic:
    """A fitted model: P(won) = sigmoid(intercept + sum(coef[j] * x[j])).

    ``se`` are the coefficients' standard errors: the square roots of the diagonal of the
    inverse penalised Hessian at the fit (the Laplace approximation of the ridge's posterior),
    NaN for a constant feature, which the data says nothing about.
    """

    intercept: float
    coef: tuple[float, ...]
    iterations: int
    se: tuple[float, ...] = ()

    def predict(self, x: Sequence[float]) -> float:
        return _sigmoid(self.intercept + sum(c * v for c, v in zip(self.coef, x, strict=True)))


def fit_logistic(
    rows: Sequence[Sequence[float]],
    labels: Sequence[bool],
    *,
    l2: float = 1.0,
    max_iter: int = 50,
    tol: float = 1e-9,
) -> Logistic:
    """Fit a logistic regression with an L2 (ridge) penalty by Newton's method (IRLS).

    Features are standardised before the penalty applies, so ``l2`` weighs every rule alike
    whatever its scale (a count of opens and a yes/no fit rule); the intercept is not
    penalised. The coefficients returned are on the original scale. The penalty keeps the
    problem strictly convex, so an optimum exists even when a feature separates the classes
    (without it there is none: the weight would grow forever); each Newton step is halved
    until the penalised loss falls, so the iteration cannot overshoot.

    Args:
        rows: one feature vector per case, all the same length.
        labels: True for won.
        l2: the penalty ``l2/2 * sum(beta**2)`` on standardised coefficients, more than 0.
    """
    n = len(rows)
    if n == 0 or n != len(labels):
        raise ValueError("fit_logistic needs as many labels as rows, and at least one")
    if not l2 > 0:
        raise ValueError(f"l2 must be more than 0, got {l2!r}")
    d = len(rows[0])
    means = [sum(r[j] for r in rows) / n for j in range(d)]
    sds = []
    for j in range(d):
        var = sum((r[j] - means[j]) ** 2 for r in rows) / n
        sds.append(math.sqrt(var) if var > 1e-18 else 0.0)
    live = [j for j in range(d) if sds[j] > 0]  # a constant feature carries nothing
    # Scaled but not centred: rule hits are mostly zeros, and keeping them zero lets each
    # Newton step touch only the features a case has (the intercept absorbs the means).
    xs = [
        [(0, 1.0)] + [(pos, r[j] / sds[j]) for pos, j in enumerate(live, 1) if r[j] != 0]
        for r in rows
    ]
    ys = [1.0 if y else 0.0 for y in labels]
    k = len(live) + 1
    beta = [0.0] * k
    rate = sum(ys) / n
    if 0 < rate < 1:
        beta[0] = math.log(rate / (1 - rate))

    def loss(beta: list[float]) -> float:
        total = l2 / 2 * sum(b * b for b in beta[1:])
        for x, y in zip(xs, ys, strict=True):
            z = sum(beta[a] * v for a, v in x)
            # log(1 + e^z) - y z, without overflow for large |z|
            total += (z if z > 0 else 0.0) + math.log1p(math.exp(-abs(z))) - y * z
        return total

    current = loss(beta)
    it = 0
    hess: list[list[float]] = []
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        grad = [0.0] * k
        hess = [[0.0] * k for _ in range(k)]
        for x, y in zip(xs, ys, strict=True):
            p = _sigmoid(sum(beta[a] * v for a, v in x))
            w = p * (1 - p)
            err = p - y
            for i, (a, va) in enumerate(x):
                grad[a] += err * va
                wa = w * va
                row = hess[a]
                for b, vb in x[i:]:
                    row[b] += wa * vb
        for a in range(1, k):
            grad[a] += l2 * beta[a]
            hess[a][a] += l2
        for a in range(k):
            for b in range(a):
                hess[a][b] = hess[b][a]
        hess[0][0] += 1e-9  # all one class: keep the system solvable
        step = solve(hess, grad)
        for _ in range(40):  # damped: halve the step until the loss does not rise
            trial = [b - s for b, s in zip(beta, step, strict=True)]
            after = loss(trial)
            if after <= current + 1e-12 * abs(current):
                break
            step = [s / 2 for s in step]
        beta, current = trial, after
        if max(abs(s) for s in step) < tol:
            break
    coef = [0.0] * d
    se = [math.nan] * d
    for pos, j in enumerate(live, 1):
        coef[j] = beta[pos] / sds[j]
        # The Hessian of the last step: the step was below tol, so it is the fit's.
        unit = [1.0 if a == pos else 0.0 for a in range(k)]
        se[j] = math.sqrt(max(0.0, solve(hess, unit)[pos])) / sds[j]
    return Logistic(beta[0], tuple(coef), it, tuple(se))


def cross_fitted(
    scores: Sequence[float], labels: Sequence[bool], folds: int = 5, l2: float = 1.0
) -> list[float]:
    """P(won) for each case from a logistic fit of the label on the score that never saw it.

    Case ``i`` is in fold ``i % folds``; its probability comes from the fit on the other folds.
    Predicting a case from a fit that included it flatters the fit (most of all on small
    segments), so a calibration curve drawn from these probabilities shows how the score
    would have done on new cases. The light ridge penalty keeps a score that separates the
    classes of a fold finite.
    """
    n = len(scores)
    if n != len(labels) or folds < 2 or n < folds:
        raise ValueError("cross_fitted needs as many labels as scores, and a case per fold")
    out = [0.0] * n
    for k in range(folds):
        train = [i for i in range(n) if i % folds != k]
        fit = fit_logistic([[scores[i]] for i in train], [labels[i] for i in train], l2=l2)
        for i in range(k, n, folds):
            out[i] = fit.predict([scores[i]])
    return out


def solve(a: Sequence[Sequence[float]], b: Sequence[float]) -> list[float]:
    """Solve ``a x = b`` by Gaussian elimination with partial pivoting (a small dense system)."""
    n = len(b)
    m = [list(map(float, row)) + [float(v)] for row, v in zip(a, b, strict=True)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        if abs(m[pivot][col]) < 1e-300:
            raise ValueError("singular system")
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            if f:
                for c in range(col, n + 1):
                    m[r][c] -= f * m[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x
