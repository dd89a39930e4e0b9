"""The terms the page uses, each defined once in plain words: shown as hovers (help=) and glossary lines."""

from __future__ import annotations

import re

GLOSSARY = {
    "q": "the approximate posterior a fit learns: a Gaussian over (slope, intercept) with its own means and sds.",
    "mean-field": "a q that treats slope and intercept as independent (a diagonal covariance); it cannot show their "
    "correlation, so its sds settle below the exact ones when the two are correlated.",
    "ELBO": "evidence lower bound, E_q[log p(y | slope, intercept)] − KL(q ‖ prior); maximising it is the same as "
    "minimising KL(q ‖ exact posterior). The loss chart shows the negative ELBO.",
    "KL": "Kullback–Leibler divergence, KL(q ‖ p): how far q is from p in nats; 0 only when q equals p.",
    "evidence": "p(y), the probability of the data under the model with slope and intercept averaged over the prior; "
    "−log p(y) is the lowest value the negative ELBO can reach.",
    "AutoNormal": "Pyro's mean-field guide: an independent Gaussian for the slope and for the intercept.",
    "AutoMultivariateNormal": "Pyro's full-covariance guide: one Gaussian over (slope, intercept) with a correlation, "
    "so it can match the exact posterior.",
}


def terms_in(text: str) -> list[str]:
    """The glossary terms that `text` uses, in glossary order ("q" only as a symbol: q, q's, KL(q ‖ ...))."""
    found = []
    for term in GLOSSARY:
        pattern = r"(?<![\w-])q(?![\w-])" if term == "q" else rf"(?<![\w-]){re.escape(term)}(?![\w-])"
        if re.search(pattern, text, flags=0 if term in ("q", "ELBO", "KL") else re.IGNORECASE):
            found.append(term)
    return found


def define(*terms: str) -> str:
    """The definitions of `terms`, and of the terms those use, as Markdown lines ("**term**: definition")."""
    wanted = list(dict.fromkeys(terms))
    for term in wanted:  # grows while it is read: every definition's own terms are defined too
        wanted.extend(used for used in terms_in(GLOSSARY[term]) if used not in wanted)
    return "  \n".join(f"**{term}**: {GLOSSARY[term]}" for term in wanted)


def define_used(*texts: str) -> str:
    """The definitions of every glossary term the `texts` use (define), "" when they use none."""
    used = [term for term in GLOSSARY if any(term in terms_in(text) for text in texts)]
    return define(*used)
