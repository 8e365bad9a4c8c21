"""Ad copy written for one user, checked against the brief before it is shown.

    >>> from townsquare.ads.campaigns import Brief
    >>> brief = Brief(product="Acme trail shoes", claims=["waterproof", "30-day returns"],
    ...               landing_url="https://acme.example/trail", languages=["en"])
    >>> claim_problems("Acme trail shoes: waterproof, 30-day returns. https://acme.example/trail", brief)
    []
    >>> claim_problems("The best trail shoes, now 20% off!", brief)
    ['number not in the brief: 20%', "superlative not in the brief: 'best'"]

The rules (a generated draft that breaks any is discarded and the template is shown instead):

- at most 280 characters; in the user's language;
- every number, price, percentage and date must appear in the brief (its claims, product or call
  to action), and so must every superlative ("best", "cheapest", "#1", "le meilleur", "el más
  barato"...): small models invent offers, and an ad that promises what the advertiser did not
  is a false claim;
- no link but the landing page;
- nothing that names a special category of personal data (``ads.sensitive``), and nothing the
  brand-safety classifier (``ads.safety``) flags.

Templates are built from the brief's own fields, so they pass by construction (and are checked
anyway). The model only phrases: the product, claims and link come from the brief.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from townsquare.ads.campaigns import Brief, Campaign
from townsquare.text.normalize import lower_strip_accents
from townsquare.text.quality import reads_well
from townsquare.text.rules import URL_LOOSE

if TYPE_CHECKING:                      # types only: no import cost, no cycle
    from townsquare.ads.safety import BrandSafety
    from townsquare.ads.sensitive import SensitiveDetector
    from townsquare.llm.base import Backend

MAX_CHARS = 280
_NUMBER = re.compile(r"[$€£¥]\s?\d[\d.,]*|\d[\d.,]*\s?(?:%|€|\$|£|k\b|x\b)?", re.UNICODE)
_MONTHS = ("january february march april may june july august september october november "
           "december janvier fevrier mars avril mai juin juillet aout septembre octobre "
           "novembre decembre enero febrero marzo abril mayo junio julio agosto septiembre "
           "octubre noviembre diciembre monday tuesday wednesday thursday friday saturday "
           "sunday lundi mardi mercredi jeudi vendredi samedi dimanche lunes martes miercoles "
           "jueves viernes sabado domingo today tomorrow tonight aujourd'hui demain hoy manana "
           "weekend").split()
_SUPERLATIVES = [
    "best", "cheapest", "fastest", "greatest", "lowest", "highest", "biggest", "strongest",
    "safest", "newest", "#1", "number one", "no. 1", "top-rated", "top rated", "leading",
    "guaranteed", "guarantee", "unbeatable", "unmatched", "world-class", "free", "only",
    "ever", "most", "le meilleur", "la meilleure", "les meilleurs", "meilleur", "meilleure",
    "moins cher", "le plus", "la plus", "numéro un", "garanti", "garantie", "gratuit",
    "imbattable", "el mejor", "la mejor", "mejor", "más barato", "más barata", "el más",
    "la más", "número uno", "garantizado", "garantizada", "gratis", "inmejorable"]
_LANG_NAMES = {"en": "English", "fr": "French", "es": "Spanish", "de": "German",
               "it": "Italian", "pt": "Portuguese"}

_TEMPLATES = {
    "en": "{hook}{product}: {claims}. {cta}: {url}",
    "fr": "{hook}{product} : {claims}. {cta} : {url}",
    "es": "{hook}{product}: {claims}. {cta}: {url}",
}
_HOOKS = {"en": "For {interest} fans: ", "fr": "Pour les passionnés de {interest} : ",
          "es": "Para quienes aman {interest}: "}
_CTA = {"fr": "En savoir plus", "es": "Más información"}


def _brief_text(brief: Brief) -> str:
    return lower_strip_accents(" ".join([brief.product, brief.call_to_action, *brief.claims]))


def _has(haystack: str, phrase: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", haystack) is not None


def claim_problems(text: str, brief: Brief) -> list[str]:
    """Why ``text`` may not be shown for ``brief`` (empty: nothing wrong with its claims)."""
    problems = []
    if len(text) > MAX_CHARS:
        problems.append(f"{len(text)} characters (at most {MAX_CHARS})")
    allowed = _brief_text(brief)
    body = URL_LOOSE.sub(" ", text)
    for m in _NUMBER.finditer(body):
        tok = m.group().strip().rstrip(".,")
        digits = re.sub(r"\D", "", tok)
        if digits and digits not in re.sub(r"[^\d ]", "", allowed).split() and \
                lower_strip_accents(tok) not in allowed:
            problems.append(f"number not in the brief: {tok}")
    folded = lower_strip_accents(body)
    for word in _MONTHS:
        if _has(folded, word) and not _has(allowed, word):
            problems.append(f"date not in the brief: {word!r}")
    for sup in _SUPERLATIVES:
        s = lower_strip_accents(sup)
        if _has(folded, s) and not _has(allowed, s):
            problems.append(f"superlative not in the brief: {sup!r}")
            break                                   # one is enough to reject
    for url in URL_LOOSE.findall(text):
        if url.rstrip(".,)") != brief.landing_url:
            problems.append(f"link other than the landing page: {url}")
    return problems


def template_copy(c: Campaign, lang: str, interest: str | None = None) -> str:
    """The brief's own words in a per-language template (English when the language has none)."""
    lang = lang if lang in _TEMPLATES else "en"
    hook = _HOOKS[lang].format(interest=interest) if interest else ""
    cta = c.brief.call_to_action if lang == "en" or c.brief.call_to_action != "Learn more" \
        else _CTA.get(lang, c.brief.call_to_action)
    claims = ", ".join(c.brief.claims[:3]) or c.brief.product
    text = _TEMPLATES[lang].format(hook=hook, product=c.brief.product, claims=claims, cta=cta,
                                   url=c.brief.landing_url)
    if len(text) > MAX_CHARS:                           # drop the hook, then claims, to fit
        text = _TEMPLATES[lang].format(hook="", product=c.brief.product,
                                       claims=c.brief.claims[0] if c.brief.claims else "",
                                       cta=cta, url=c.brief.landing_url)
    return text[:MAX_CHARS]


@dataclass(slots=True)
class Copy:
    text: str
    lang: str
    origin: str                               # "generated" | "template"
    rejected: list[str] = field(default_factory=list)   # why generated drafts were not used

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "lang": self.lang, "origin": self.origin,
                "rejected": self.rejected}


class CopyWriter:
    """Writes copy with a generation backend (``llm``), checks it, falls back to the template.

    ``detector``: ``ads.sensitive.SensitiveDetector``; ``safety``: ``ads.safety.BrandSafety``
    or None; ``language``: a function ``texts -> [lang]`` (default: lingua, as ingest uses).
    """

    def __init__(self, backend: Backend | None = None, *,
                 detector: SensitiveDetector | None = None, safety: BrandSafety | None = None,
                 language: Callable[[list[str]], list[str | None]] | None = None,
                 max_tokens: int = 60):
        if max_tokens < 8:
            raise ValueError(f"max_tokens must be >= 8, got {max_tokens}")
        self.backend = backend
        self.detector = detector
        self.safety = safety
        self._language = language
        self.max_tokens = max_tokens

    def _lang_of(self, text: str) -> str | None:
        if self._language is None:
            from townsquare.ingest.language import LanguageIdentifier
            self._language = LanguageIdentifier().detect
        return self._language([text])[0]

    def problems(self, text: str, c: Campaign, lang: str, *, language: bool = True) -> list[str]:
        """Every rule ``text`` breaks for campaign ``c`` shown in ``lang`` (``language=False``
        skips the language check: templates are in their language by construction, and a brand
        name in them can fool a detector)."""
        out = claim_problems(text, c.brief)
        out += reads_well(text, complete=False)      # an ad is a phrase: no final stop needed
        if self.detector is not None:
            cats = self.detector.categories(text)
            if cats:
                out.append(f"names a special category: {', '.join(sorted(cats))}")
        if self.safety is not None:
            verdict = self.safety.check(text)
            if not verdict.safe:
                out.append(f"brand safety: {', '.join(verdict.flags)}")
        body = URL_LOOSE.sub(" ", text)
        if language and len(body.split()) >= 4:     # too short to tell a language reliably
            got = self._lang_of(body)
            if got is not None and got != lang:
                out.append(f"language {got}, not {lang}")
        return out

    def _prompt(self, c: Campaign, lang: str, interest: str | None) -> list[dict]:
        facts = "; ".join(c.brief.claims) or "(none)"
        audience = f"The reader is interested in {interest}." if interest else ""
        return [
            {"role": "system", "content": (
                f"You write one short social media ad in {_LANG_NAMES.get(lang, lang)}, under "
                f"200 characters, {c.brief.tone} in tone. Use only the facts given. Do not add "
                f"numbers, prices, dates, links or words like best or cheapest.")},
            {"role": "user", "content": f"Product: {c.brief.product}. Facts: {facts}. "
                                        f"{audience} Write the ad."}]

    def write(self, c: Campaign, lang: str, interest: str | None = None) -> Copy:
        """Copy for a user who reads ``lang`` and likes ``interest`` (a taxonomy name)."""
        rejected: list[str] = []
        if self.backend is not None and not getattr(self.backend, "extractive", False):
            from townsquare.llm.base import BackendError, GenerationConfig
            try:
                draft = self.backend.generate(self._prompt(c, lang, interest), GenerationConfig(
                    max_tokens=self.max_tokens, temperature=0.0)).text
                draft = " ".join(draft.replace('"', " ").split()).strip()
                text = f"{draft} {c.brief.landing_url}" if draft else ""
                bad = self.problems(text, c, lang) if text else ["empty draft"]
                if not bad:
                    return Copy(text, lang, "generated")
                rejected = bad
            except BackendError as e:
                rejected = [f"generation failed: {e}"]
        text = template_copy(c, lang, interest)
        bad = self.problems(text, c, lang, language=False)
        if bad:                                      # a brief whose own words fail the rules
            text = template_copy(c, lang, None)
        return Copy(text, lang, "template", rejected)
