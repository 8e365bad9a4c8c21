"""Ad copy written for one user, checked against the brief before it is shown.

    >>> from townsquare.ads.campaigns import Brief
    >>> brief = Brief(product="Acme trail shoes", claims=["waterproof", "30-day returns"],
    ...               landing_url="https://acme.example/trail", languages=["en"])
    >>> claim_problems("Acme trail shoes: waterproof, 30-day returns. https://acme.example/trail", brief)
    []
    >>> claim_problems("The best trail shoes, now 20% off!", brief)
    ['number not in the brief: 20%', "superlative not in the brief: 'best'"]
    >>> brand_problems("Acme Trail shoes: get yours.", brief)
    ['does not name the product as the brief does: Acme trail shoes']
    >>> brand_problems("Acmee trail shoes? Acme trail shoes.", brief)
    ["misspelled brand: 'Acmee' for 'Acme'"]

How a copy is written (``CopyWriter``, the default ``slots=True``): the model writes only a
**hook**, one short sentence for the reader's interest, under a GBNF grammar (``HOOK_GRAMMAR``:
4-16 words of letters, one final ``.``/``!``/``?``, so no digit, link, quote, asterisk, colon
or list can be typed) with a few examples in the prompt in the user's language; code then fills
the slots with the brief's own words (``slot_copy``: product, claims, call to action, landing
page), so the product is named exactly. ``samples`` drafts are drawn with fixed seeds and the
best-scoring one without problems is shown; a backend that cannot follow a grammar (``openai``)
is checked the same way. ``slots=False, samples=1`` is the single greedy free draft of before
(the baseline of ``eval/ad_copy.py``).

The rules (``CopyWriter.problems`` lists every one a text breaks; a draft that breaks any is
never shown, and the template is shown when no draft is left):

- at most 280 characters; the model's words in the user's language;
- every number, price, percentage and date must appear in the brief (its claims, product or call
  to action), and so must every superlative ("best", "cheapest", "#1", "le meilleur", "el más
  barato"...): small models invent offers, and an ad that promises what the advertiser did not
  is a false claim;
- no link but the landing page;
- it names the product exactly as the brief does, and no word is a near-miss spelling of a
  brand word ("Coinsworth", "Skywatch" for "SkyWatch");
- it reads as an ad (``text.quality.reads_well``: no repetition, no self-talk like "Here's a
  possible ad", not cut off);
- it differs from the template by more than a word or two (else the template is the honest copy);
- nothing that names a special category of personal data (``ads.sensitive``), and nothing the
  brand-safety classifier (``ads.safety``) flags.

Templates are built from the brief's own fields, so they pass by construction (and are checked
anyway).
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


def _cta(c: Campaign, lang: str) -> str:
    """The brief's call to action; the default "Learn more" in the copy's language."""
    return c.brief.call_to_action if lang == "en" or c.brief.call_to_action != "Learn more" \
        else _CTA.get(lang, c.brief.call_to_action)


def template_copy(c: Campaign, lang: str, interest: str | None = None) -> str:
    """The brief's own words in a per-language template (English when the language has none)."""
    lang = lang if lang in _TEMPLATES else "en"
    hook = _HOOKS[lang].format(interest=interest) if interest else ""
    cta = _cta(c, lang)
    claims = ", ".join(c.brief.claims[:3]) or c.brief.product
    text = _TEMPLATES[lang].format(hook=hook, product=c.brief.product, claims=claims, cta=cta,
                                   url=c.brief.landing_url)
    if len(text) > MAX_CHARS:                           # drop the hook, then claims, to fit
        text = _TEMPLATES[lang].format(hook="", product=c.brief.product,
                                       claims=c.brief.claims[0] if c.brief.claims else "",
                                       cta=cta, url=c.brief.landing_url)
    return text[:MAX_CHARS]


# --- names: the product exactly, no near-miss of a brand word -------------------------------------
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_NOT_BRAND = frozenset("the les le la el los las des del de and et y from for with app".split())


def _edits(a, b) -> int:
    """Levenshtein distance between two sequences (strings, or lists of words)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def brand_words(product: str) -> list[str]:
    """The product name's own words: capitalized, four letters or more ("SkyWatch", "Coinwise",
    "Lumière"), not articles ("Les city breaks" -> no "Les")."""
    return [w for w in _TOKEN.findall(product) if len(w) >= 4 and not w.isdigit()
            and any(ch.isupper() for ch in w) and w.lower() not in _NOT_BRAND]


def brand_problems(text: str, brief: Brief) -> list[str]:
    """The product is named exactly as the brief does, and no capitalized word is a near-miss
    spelling of one of its brand words (edit distance 1 for up to 5 letters, else 2; a case
    change counts where the brand has an inner capital: "Skywatch" for "SkyWatch")."""
    out = []
    if brief.product not in text:
        out.append(f"does not name the product as the brief does: {brief.product}")
    brands = brand_words(brief.product)
    allowed = set(_TOKEN.findall(" ".join([brief.product, brief.call_to_action, *brief.claims])))
    seen = set()
    for tok in _TOKEN.findall(URL_LOOSE.sub(" ", text)):
        base = re.sub(r"['’]s$", "", tok)               # "Coinwise's" is the brand's own word
        if base in allowed or base in seen or not base[:1].isupper():
            continue
        seen.add(base)
        for b in brands:
            d = _edits(lower_strip_accents(base), lower_strip_accents(b))
            inner_caps = any(ch.isupper() for ch in b[1:])
            if 0 < d <= (1 if len(b) <= 5 else 2) or (d == 0 and base != b and inner_caps):
                out.append(f"misspelled brand: {base!r} for {b!r}")
                break
    return out


def template_distance(text: str, template: str) -> int:
    """How many words (folded, links and punctuation aside) turn ``text`` into ``template``."""
    def words(t: str) -> list[str]:
        return _TOKEN.findall(lower_strip_accents(URL_LOOSE.sub(" ", t)))
    return _edits(words(text), words(template))


# --- generation: a hook under a grammar, the rest from the brief ----------------------------------
# One sentence of 4-16 words made of letters (apostrophes and hyphens inside words), ending in
# . ! or ? (French puts a space before ! and ?; Spanish may open with ¿ or ¡). No digit, link,
# quote, asterisk, colon or list marker can be decoded, and the sentence cannot run on. A model
# that reaches the last word cannot add a space, so it may glue two words ("you'vechosen"): a
# hook of HOOK_MAX_WORDS words is rejected as cut off.
HOOK_MAX_WORDS = 16
HOOK_GRAMMAR = r"""
root ::= open? first (sep word){3,15} end
open ::= "¿" | "¡"
first ::= [A-ZÀ-ÖØ-Þ] letter{0,15}
word ::= letter{1,16}
letter ::= [a-zA-ZÀ-ÖØ-öø-ÿ'’-]
sep ::= " " | ", "
end ::= " "? [.!?]
"""
_HOOK_MAX_TOKENS = 48        # 16 short words fit; a hook that hits it was cut
# A few (invented) products per language, whose hooks show the model the form: one sentence
# to the reader's interest, no product name, no claim. The examples are in the user's language.
EXAMPLES = {
    "en": [("Northpeak rain jackets", "Hiking", "Rain on the ridge? Keep walking and stay dry."),
           ("Pagewise audiobook club", "Books", "Turn your commute into your favourite chapter."),
           ("Greenfork meal kits", "Cooking", "Dinner can be easy and still feel special!"),
           ("Tidal swim goggles", "Swimming", "Every lap feels better when you can see clearly.")],
    "fr": [("Les vélos Ruelle", "Cyclisme", "Envie de rouler en ville sans vous presser ?"),
           ("Atelier Farine", "Cuisine", "Apprenez les gestes des pâtissiers, chez vous."),
           ("Jardin Vert, graines bio", "Jardinage", "Votre balcon peut devenir un vrai potager !"),
           ("Cinéclub Lumen", "Cinéma", "Retrouvez le plaisir des grands films en salle.")],
    "es": [("Bicis Ruta", "Ciclismo", "¿Listo para recorrer la ciudad sobre dos ruedas?"),
           ("Cocina Abuela", "Cocina", "Aprende los secretos de las recetas de siempre."),
           ("Jardín Verde, semillas ecológicas", "Jardinería",
            "Tu balcón puede ser un pequeño huerto lleno de vida."),
           ("Cineclub Luz", "Cine", "Vuelve a disfrutar del cine en la pantalla grande.")],
}
_SLOTS = {"en": "{hook} {product}: {claims}. {cta}: {url}",
          "fr": "{hook} {product} : {claims}. {cta} : {url}",
          "es": "{hook} {product}: {claims}. {cta}: {url}"}


def slot_copy(c: Campaign, lang: str, hook: str) -> str:
    """``hook`` (the model's sentence) followed by the brief's product, claims, call to action
    and landing page, verbatim; fewer claims when it would not fit in 280 characters.

        >>> from townsquare.ads.campaigns import parse_campaign
        >>> c = parse_campaign({"id": "x", "advertiser": "a", "name": "n", "budget": 1,
        ...     "bid_cpm": 1, "targeting": {"keywords": ["trail"]},
        ...     "brief": {"product": "Acme shoes", "claims": ["waterproof"],
        ...     "landing_url": "https://acme.example", "languages": ["en"]}})
        >>> slot_copy(c, "en", "Muddy trails ahead?")
        'Muddy trails ahead? Acme shoes: waterproof. Learn more: https://acme.example'
    """
    lang = lang if lang in _SLOTS else "en"
    hook = " ".join(hook.split())
    text = ""
    for n in (3, 2, 1):
        text = _SLOTS[lang].format(hook=hook, product=c.brief.product,
                                   claims=", ".join(c.brief.claims[:n]) or c.brief.product,
                                   cta=_cta(c, lang), url=c.brief.landing_url)
        if len(text) <= MAX_CHARS:
            break
    return text


def _hook_score(hook: str, c: Campaign, interest: str | None) -> tuple[int, int]:
    """Prefer a hook that speaks of the reader's interest or the product (words sharing their
    first five letters), then one of about 60 characters (short enough to read at a glance)."""
    def stems(t: str) -> set[str]:
        return {w[:5] for w in _TOKEN.findall(lower_strip_accents(t)) if len(w) >= 4}
    topic = stems(" ".join([interest or "", c.brief.product, *c.brief.claims]))
    return len(stems(hook) & topic), -abs(len(hook) - 60)


@dataclass(slots=True)
class Copy:
    text: str
    lang: str
    origin: str                               # "generated" | "template"
    rejected: list[str] = field(default_factory=list)   # why drafts were not used (once each)
    drafts: int = 0                           # drafts the model wrote for it
    hook: str | None = None                   # the model's own words in a slot-filled copy

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "lang": self.lang, "origin": self.origin,
                "rejected": self.rejected, "drafts": self.drafts, "hook": self.hook}


class CopyWriter:
    """Writes copy with a generation backend (``llm``), checks it, falls back to the template.

    ``detector``: ``ads.sensitive.SensitiveDetector``; ``safety``: ``ads.safety.BrandSafety``
    or None; ``language``: a function ``texts -> [lang]`` (default: lingua, as ingest uses).
    ``slots``: the model writes a hook under ``HOOK_GRAMMAR`` and the brief fills the rest
    (False: the model writes the whole ad, as before); ``samples``: drafts drawn with seeds
    0..samples-1 at ``temperature`` (1: one greedy draft); ``examples``: example hooks per
    language in the prompt. The defaults are what ``eval/ad_copy.py`` chose on its tuning half.
    ``generate_languages``: the languages the model writes in; a reader of any other gets the
    template. English only by default: in ``eval/ad_copy.py`` the packaged small model's French
    and Spanish hooks passed every check yet read as nonsense to a reviewer ("L'exploreur de
    l'avenir sans vous."), and no check here judges meaning; a stronger model can widen it.
    """

    def __init__(self, backend: Backend | None = None, *,
                 detector: SensitiveDetector | None = None, safety: BrandSafety | None = None,
                 language: Callable[[list[str]], list[str | None]] | None = None,
                 max_tokens: int = 60, slots: bool = True, samples: int = 1,
                 temperature: float = 0.0, examples: int = 4,
                 generate_languages: tuple[str, ...] = ("en",)):
        if max_tokens < 8:
            raise ValueError(f"max_tokens must be >= 8, got {max_tokens}")
        if not 1 <= samples <= 16:
            raise ValueError(f"samples must be in [1, 16], got {samples}")
        if not 0 <= examples <= len(EXAMPLES["en"]):
            raise ValueError(f"examples must be in [0, {len(EXAMPLES['en'])}], got {examples}")
        self.backend = backend
        self.detector = detector
        self.safety = safety
        self._language = language
        self.max_tokens = max_tokens
        self.slots = slots
        self.samples = samples
        self.temperature = temperature
        self.examples = examples
        self.generate_languages = tuple(generate_languages)

    def _lang_of(self, text: str) -> str | None:
        if self._language is None:
            from townsquare.ingest.language import LanguageIdentifier
            self._language = LanguageIdentifier().detect
        return self._language([text])[0]

    def problems(self, text: str, c: Campaign, lang: str, *, interest: str | None = None,
                 written: str | None = None, generated: bool = True) -> list[str]:
        """Every rule ``text`` breaks for campaign ``c`` shown in ``lang`` to a reader of
        ``interest``. ``written``: the model's own words in it (the hook; default: the whole
        text), whose language is checked: the brief's words are the advertiser's. With
        ``generated=False`` (a template) the language and likeness-to-the-template checks are
        skipped: a template is in its language by construction, and a brand name in it can
        fool a detector."""
        out = claim_problems(text, c.brief)
        out += reads_well(text, complete=False)      # an ad is a phrase: no final stop needed
        if written is not None and written != text:  # the hook must be a whole sentence itself
            out += [p for p in reads_well(written) if p not in out]
        out += brand_problems(text, c.brief)
        if self.detector is not None:
            cats = self.detector.categories(text)
            if cats:
                out.append(f"names a special category: {', '.join(sorted(cats))}")
        if self.safety is not None:
            verdict = self.safety.check(text)
            if not verdict.safe:
                out.append(f"brand safety: {', '.join(verdict.flags)}")
        if not generated:
            return out
        near = min(template_distance(text, template_copy(c, lang, i)) for i in {interest, None})
        if near <= 2:
            out.append(f"the template with {near} word(s) changed")
        body = URL_LOOSE.sub(" ", text if written is None else written)
        if len(body.split()) >= 4:                   # too short to tell a language reliably
            got = self._lang_of(body)
            if got is not None and got != lang:
                out.append(f"language {got}, not {lang}")
        return out

    def _prompt(self, c: Campaign, lang: str, interest: str | None) -> list[dict]:
        """The free draft's prompt (``slots=False``): the model writes the whole ad."""
        facts = "; ".join(c.brief.claims) or "(none)"
        audience = f"The reader is interested in {interest}." if interest else ""
        return [
            {"role": "system", "content": (
                f"You write one short social media ad in {_LANG_NAMES.get(lang, lang)}, under "
                f"200 characters, {c.brief.tone} in tone. Use only the facts given. Do not add "
                f"numbers, prices, dates, links or words like best or cheapest.")},
            {"role": "user", "content": f"Product: {c.brief.product}. Facts: {facts}. "
                                        f"{audience} Write the ad."}]

    def _hook_prompt(self, c: Campaign, lang: str, interest: str | None) -> list[dict]:
        """The hook's prompt: the task, then example turns in ``lang``, then this campaign."""
        shots = EXAMPLES.get(lang, EXAMPLES["en"])[:self.examples]
        msgs = [{"role": "system", "content": (
            f"You write the opening line of an ad in {_LANG_NAMES.get(lang, lang)}: one short "
            f"sentence, {c.brief.tone} in tone, that speaks to the reader's interest. Do not "
            f"name the product. No numbers, prices, dates or links.")}]
        for product, topic, hook in shots:
            msgs += [{"role": "user",
                      "content": f"Product: {product}. Reader's interest: {topic}."},
                     {"role": "assistant", "content": hook}]
        msgs.append({"role": "user", "content": f"Product: {c.brief.product}. Reader's interest: "
                                                f"{interest or c.brief.product}."})
        return msgs

    def drafts(self, c: Campaign, lang: str, interest: str | None = None
               ) -> list[tuple[str, str | None, list[str]]]:
        """Every draft the model writes for this reader: ``(text, hook or None, problems)``."""
        from townsquare.llm.base import GenerationConfig
        greedy = self.samples == 1
        grammar = HOOK_GRAMMAR if self.slots and self.backend.supports_grammar else None
        prompt = self._hook_prompt(c, lang, interest) if self.slots else \
            self._prompt(c, lang, interest)
        out = []
        for seed in range(self.samples):
            g = self.backend.generate(prompt, GenerationConfig(
                max_tokens=_HOOK_MAX_TOKENS if self.slots else self.max_tokens,
                temperature=0.0 if greedy else self.temperature, top_p=0.95 if not greedy else 1.0,
                seed=seed, grammar=grammar))
            draft = " ".join(g.text.replace('"', " ").split()).strip()
            if not draft:
                out.append(("", None, ["empty draft"]))
                continue
            hook = draft if self.slots else None
            text = slot_copy(c, lang, draft) if self.slots else f"{draft} {c.brief.landing_url}"
            bad = self.problems(text, c, lang, interest=interest, written=hook)
            if g.finish_reason == "length":
                bad.append("cut off: the model hit its token limit")
            elif self.slots and grammar and len(draft.split()) >= HOOK_MAX_WORDS:
                bad.append(f"cut off: the hook reached its {HOOK_MAX_WORDS}-word limit")
            out.append((text, hook, bad))
        return out

    def write(self, c: Campaign, lang: str, interest: str | None = None) -> Copy:
        """Copy for a user who reads ``lang`` and likes ``interest`` (a display label in
        ``lang``): the best draft without problems, else the template."""
        rejected: list[str] = []
        n = 0
        if (self.backend is not None and not getattr(self.backend, "extractive", False)
                and lang in self.generate_languages):
            from townsquare.llm.base import BackendError
            try:
                drafts = self.drafts(c, lang, interest)
            except BackendError as e:
                drafts = [("", None, [f"generation failed: {e}"])]
            n = len(drafts)
            for _t, _h, bad in drafts:
                rejected += [b for b in bad if b not in rejected]
            ok = [(t, h) for t, h, bad in drafts if not bad]
            if ok:
                # max keeps the first (lowest seed) of equal scores: the choice is reproducible
                text, hook = max(ok, key=lambda th: _hook_score(th[1] or th[0], c, interest))
                return Copy(text, lang, "generated", rejected, n, hook)
        text = template_copy(c, lang, interest)
        bad = self.problems(text, c, lang, generated=False)
        if bad:                                      # a brief whose own words fail the rules
            text = template_copy(c, lang, None)
        return Copy(text, lang, "template", rejected, n)
