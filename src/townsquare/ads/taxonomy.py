"""The ads taxonomy: the interest topics advertisers may target (Google Topics taxonomy v2, tiers
1-2) and the special categories nobody may target, each with en/fr/es keywords and examples.

    >>> INTERESTS[249].path, INTERESTS[249].parent, INTERESTS[249].labels["fr"]
    ('/News/World News', 243, 'Actualité internationale')
    >>> INTERESTS[247].sensitive, INTERESTS[332].name, INTERESTS[332].tier
    ('politics', 'Travel & Transportation', 1)
    >>> sorted(SENSITIVE)
    ['ethnicity', 'health', 'politics', 'religion', 'sexual_orientation', 'trade_union']
    >>> topic_of("/News/Local News"), LEGACY_SLUGS["travel"]
    (245, 332)

**Why Topics v2** (rather than the IAB Tech Lab Content Taxonomy 3.x, the other standard the issue
named): Topics is built to describe the *interests of a user* from what they read, which is what
an ad profile is; IAB's is built to describe the *context of a page*. Topics keeps a ``/News``
topic with Business, Local, World news and Politics under it, where IAB 3.x dropped its News
parent and spread news over Crime, Disasters, War and Conflicts, Law...: a news account is one
interest here, six there. Topics was curated to leave out sensitive categories (no religion,
health conditions, ethnicity, sexuality or union topics), so in tiers 1-2 only 247
``/News/Politics`` (political opinions, GDPR Art. 9) has to be flagged; checked by hand over the
168, including ``/People & Society`` (Charity & Philanthropy, Parenting), ``/Beauty & Fitness``
(services, care, fitness: no conditions) and ``/Law & Government/Labor & Employment Law`` (law,
not union membership). Its ids are stable integers, and it is published under Apache-2.0
(https://github.com/patcg-individual-drafts/topics, ``taxonomy_v2.md``). Tiers 1-2 (22 + 146
topics) are as fine as a few dozen posts per user can support; tier 3+ (301 more) cannot be
told apart from so little text. Topics v2 has no weather or science topic: weather and storms
are ``/News/Local News`` here.

The data is packaged: ``topics_v2.tsv`` (id, parent, path, en/fr/es labels, sensitive) and
``topics_v2_keywords.tsv`` (keywords and invented examples per topic and language, written for
townsquare), loaded and checked once on import (``load_topics``). ``townsquare.ads.sensitive``
matches keywords against text (``KeywordMatcher``) and embeds them (``prototypes``). Keyword
syntax (comma-separated, written naturally with accents, folded when compiled):

- ``word`` or ``two words``: whole words of the folded text (case and accents removed), the last
  word also with a plural ``s``/``es``/``x`` (``catholic`` matches "Catholics");
- ``prefix*``: any word starting so (``diabet*``: diabetes, diabetic, "diabète", diabético);
- ``=Word``: matched case-sensitively (accents still removed), for names that are also common
  words: ``=Podemos`` (a Spanish party) but not "podemos ir" (we can go) mid-sentence;
- ``exclude`` phrases are cut out of the text before the category's keywords run ("oh my god" is
  not religion, "Labour Day" not politics).

Keywords are not scoped to a language when matching (posts mix languages and ``lang`` is often
missing), so a keyword must not be a common word of another of the three languages: French "ai"
(j'ai) rules out "ai" for artificial intelligence, French "car" (because) rules out "car" for
cars, English "vol." rules out French "vol" (flight) alone, Spanish "isla*" would match "Islam".
Topics form a two-level tree (``parent``): a post about soccer is also about sports.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

LANGS = ("en", "fr", "es")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Category:
    """A special category (or a background anchor of ``ads.sensitive``), named by a snake_case
    id. ``keywords`` and ``examples`` map a language code to phrases and invented example
    sentences; the description and examples make the category's embedding prototype."""

    id: str
    name: str
    description: str
    keywords: Mapping[str, tuple[str, ...]]
    examples: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    parent: str | None = None

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ValueError(f"category id must be snake_case ascii: {self.id!r}")
        if not self.name.strip() or not self.description.strip():
            raise ValueError(f"{self.id}: a name and a description are required")
        missing = [lang for lang in LANGS if not self.keywords.get(lang)]
        if missing:
            raise ValueError(f"{self.id}: no keywords for {', '.join(missing)}")
        _check_keywords(self.id, self.keywords)


@dataclass(frozen=True, slots=True)
class Interest:
    """One topic of the taxonomy: ``id`` (the Topics integer), ``path`` ("/News/World News"),
    ``name`` (its English label), ``labels`` per language, ``parent`` (a tier-1 id, or None for a
    tier-1 topic), ``tier``, ``keywords``/``examples`` per language, and ``sensitive``: the
    special category it belongs to (such a topic is never profiled nor targeted), else None."""

    id: int
    path: str
    name: str
    labels: Mapping[str, str]
    parent: int | None
    keywords: Mapping[str, tuple[str, ...]]
    examples: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sensitive: str | None = None
    exclude: tuple[str, ...] = ()

    @property
    def tier(self) -> int:
        return 1 if self.parent is None else 2

    @property
    def description(self) -> str:
        """What the embedding prototype starts from: the path in words and the labels."""
        words = " > ".join(self.path.strip("/").split("/"))
        return f"{words}; {self.labels['fr']}; {self.labels['es']}"


def _check_keywords(where: object, keywords: Mapping[str, tuple[str, ...]]) -> None:
    for lang, kws in keywords.items():
        for k in kws:
            if not k.strip() or k.strip() in ("*", "="):
                raise ValueError(f"{where}/{lang}: empty keyword")


def _kw(**langs: str) -> dict[str, tuple[str, ...]]:
    """``en="a, b c"`` -> ``{"en": ("a", "b c")}``."""
    return {lang: tuple(k.strip() for k in s.split(",") if k.strip()) for lang, s in langs.items()}


def _ex(**langs: str) -> dict[str, tuple[str, ...]]:
    """Example sentences, ``|``-separated per language."""
    return {lang: tuple(k.strip() for k in s.split("|") if k.strip()) for lang, s in langs.items()}


def _table(*items: Category) -> dict[str, Category]:
    out: dict[str, Category] = {}
    for it in items:
        if it.id in out:
            raise ValueError(f"duplicate category id {it.id!r}")
        out[it.id] = it
    return out


# --- the topics: what advertisers may target -----------------------------------------------------
def _rows(text: str, name: str, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of a tab-separated file whose first non-comment line is ``columns``."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.startswith("#")]
    if not lines or tuple(lines[0][1].split("\t")) != columns:
        raise ValueError(f"{name}: expected the header {' | '.join(columns)}")
    out = []
    for n, line in lines[1:]:
        cells = next(csv.reader([line], delimiter="\t", quoting=csv.QUOTE_NONE))
        if len(cells) != len(columns):
            raise ValueError(f"{name}, line {n}: {len(cells)} fields, expected {len(columns)}")
        out.append((n, dict(zip(columns, cells))))
    return out


TOPICS_FILE = "topics_v2.tsv"
KEYWORDS_FILE = "topics_v2_keywords.tsv"


def load_topics(topics: str | Path | None = None,
                keywords: str | Path | None = None) -> dict[int, Interest]:
    """The topics of ``topics`` (default: the packaged ``topics_v2.tsv``) with the keywords of
    ``keywords`` (default ``topics_v2_keywords.tsv``), checked: integer ids, unique; a tier-2
    topic's parent exists, is tier 1 and prefixes its path; three labels; keywords in the three
    languages; ``sensitive`` names a special category. A ``ValueError`` names the file and line."""
    pkg = resources.files("townsquare.ads")
    t_name = str(topics or TOPICS_FILE)
    k_name = str(keywords or KEYWORDS_FILE)
    t_text = Path(topics).read_text("utf-8") if topics else (pkg / TOPICS_FILE).read_text("utf-8")
    k_text = Path(keywords).read_text("utf-8") if keywords else \
        (pkg / KEYWORDS_FILE).read_text("utf-8")
    kws: dict[int, dict[str, tuple[str, ...]]] = {}
    exs: dict[int, dict[str, tuple[str, ...]]] = {}
    for n, r in _rows(k_text, k_name, ("id", "lang", "keywords", "examples")):
        where = f"{k_name}, line {n}"
        if not r["id"].isdigit() or r["lang"] not in LANGS:
            raise ValueError(f"{where}: expected a topic id and one of {', '.join(LANGS)}")
        i = int(r["id"])
        if r["lang"] in kws.get(i, {}):
            raise ValueError(f"{where}: topic {i} has two {r['lang']} rows")
        kws.setdefault(i, {})[r["lang"]] = tuple(k.strip() for k in r["keywords"].split(",")
                                                 if k.strip())
        exs.setdefault(i, {})[r["lang"]] = tuple(x.strip() for x in r["examples"].split("|")
                                                 if x.strip())
    rows = _rows(t_text, t_name, ("id", "parent", "path", "en", "fr", "es", "sensitive"))
    out: dict[int, Interest] = {}
    for n, r in rows:
        where = f"{t_name}, line {n}"
        if not r["id"].isdigit() or (r["parent"] and not r["parent"].isdigit()):
            raise ValueError(f"{where}: ids must be integers")
        i = int(r["id"])
        if i in out:
            raise ValueError(f"{where}: duplicate topic id {i}")
        labels = {lang: r[lang].strip() for lang in LANGS}
        if not all(labels.values()):
            raise ValueError(f"{where}: topic {i} needs en, fr and es labels")
        if r["sensitive"] and r["sensitive"] not in SENSITIVE:
            raise ValueError(f"{where}: sensitive must be one of {', '.join(SENSITIVE)}")
        k = kws.get(i, {})
        missing = [lang for lang in LANGS if not k.get(lang)]
        if missing:
            raise ValueError(f"{k_name}: topic {i} has no keywords for {', '.join(missing)}")
        _check_keywords(i, k)
        out[i] = Interest(i, r["path"], labels["en"], labels, int(r["parent"]) if r["parent"]
                          else None, k, exs.get(i, {}), r["sensitive"] or None)
    for n, r in rows:
        it = out[int(r["id"])]
        if it.parent is None:
            if it.path.count("/") != 1:
                raise ValueError(f"{t_name}, line {n}: {it.path} has no parent")
            continue
        p = out.get(it.parent)
        if p is None or p.parent is not None or not it.path.startswith(p.path + "/"):
            raise ValueError(f"{t_name}, line {n}: parent {it.parent} of {it.id} is not the "
                             f"tier-1 topic above {it.path}")
    unknown = sorted(set(kws) - set(out))
    if unknown:
        raise ValueError(f"{k_name}: keywords for unknown topics {unknown}")
    return out


def topic_of(ref: int | str) -> int | None:
    """A topic id from an id (``249``, ``"249"``) or a path (``"/News/World News"``, any case);
    None when it is neither."""
    if isinstance(ref, bool):
        return None
    if isinstance(ref, int):
        return ref if ref in INTERESTS else None
    s = ref.strip()
    if s.isdigit():
        return int(s) if int(s) in INTERESTS else None
    return _BY_PATH.get(s.lower().rstrip("/"))


# The 26 categories townsquare used before Topics (issue 19), and the topic that replaces each:
# campaigns still naming one are refused with the id to use instead (``ads.campaigns``).
LEGACY_SLUGS: dict[str, int] = {
    "travel": 332, "food_drink": 172, "sports": 299, "football": 325, "basketball": 304,
    "technology": 126, "gaming": 183, "music": 23, "movies_tv": 12, "books": 100,
    "fashion": 96, "beauty": 88, "fitness": 97, "outdoors": 201, "pets": 265,
    "home_garden": 207, "autos": 57, "finance": 149, "business": 103, "education": 227,
    "parenting": 258, "weather_science": 245, "art_photography": 53, "local_events": 352,
    "volunteering": 562, "shopping": 289,
}

# --- special categories: what nobody may target --------------------------------------------------
# GDPR Art. 9(1) lists the special categories of personal data: racial or ethnic origin, political
# opinions, religious or philosophical beliefs, trade union membership, genetic and biometric data,
# data concerning health, and data concerning a person's sex life or sexual orientation. EU DSA
# Art. 26(3) forbids online platforms to present ads based on profiling that uses them, and
# Art. 28(2) forbids profiling-based ads to minors at all. An interest *inferred from posts* about
# these topics is such data (it reveals them), so a post touching one is never profiled on and a
# campaign phrased on one is refused. Genetic and biometric data fall under "health" here: posts
# reveal them only as medical topics (DNA tests, genetic conditions).
# Keywords favor recall: a post wrongly taken as sensitive costs one ad-profile signal; a sensitive
# post profiled on is a legal breach. Decisions on hard cases (see the test set in
# tests/ads/test_sensitive.py): cultural holidays (Christmas markets, Easter eggs) and church
# *buildings* as sights are not beliefs, but "church" itself is a keyword, so such posts are
# skipped too (accepted false positives); exercise is fitness, a condition or treatment is health;
# "praying for ..." counts as religion; gender identity goes with sexual orientation.
SENSITIVE: dict[str, Category] = _table(
    Category("health", "Health", "Health conditions, illnesses, diseases, disabilities, medical "
             "treatment, medication, mental health, pregnancy, fertility, addiction and genetic "
             "conditions.",
             _kw(en="diagnos*, diabet*, cancer*, tumor*, tumour*, chemo*, radiotherapy, oncolog*, "
                    "depression, depressed, anxiety, panic attack, mental health, mental illness, "
                    "therap*, antidepressant*, medication*, meds, prescription*, pharmac*, "
                    "inhaler, insulin, asthma*, hiv, aids, pregnan*, miscarriage, ivf, fertility, "
                    "infertil*, abortion*, epilep*, seizure*, alzheimer*, dementia, parkinson*, "
                    "autis*, adhd, bipolar, schizophreni*, ocd, ptsd, eating disorder, anorexi*, "
                    "bulimi*, suicid*, self harm, disabilit*, disabled, wheelchair*, "
                    "chronic pain, chronic illness, migraine*, arthritis, crohn*, surgery, "
                    "surgeon*, hospital, hospitals, hospitali*, symptom*, illness*, disease*, "
                    "rehab, addiction*, addict, addicts, alcoholi*, sobriety, overdose, "
                    "heart attack, stroke, blood pressure, cholesterol, hepatitis, transplant, "
                    "dialysis, menopaus*, endometriosis, psychiatr*, psycholog*, long covid, "
                    "tested positive, genetic test*, dna test*, doctor s appointment, "
                    "gp appointment, cyst*, obesity, vaccine injury, std, sti, terminal, "
                    "infection*",
                 fr="diagnostiqu*, diagnostic*, diabet*, cancer*, tumeur*, chimio*, "
                    "radiotherapie, oncolog*, depression*, deprime*, anxiete, angoisse*, "
                    "sante mentale, maladie*, malade*, psychiatr*, psycholog*, psy, therapie*, "
                    "antidepresseur*, medicament*, traitement*, ordonnance*, pharmacie*, "
                    "enceinte, grossesse*, fausse couche, fiv, avortement*, ivg, epilep*, "
                    "alzheimer, parkinson, autis*, tdah, bipolaire*, schizophren*, toc, anorexi*, "
                    "boulimi*, suicid*, handicap*, fauteuil roulant, douleur chronique, "
                    "douleurs chroniques, migraine*, crohn, chirurgie*, chirurgien*, hopital, "
                    "hopitaux, urgences, symptome*, vih, sida, addiction*, alcoolisme, sevrage, "
                    "avc, crise cardiaque, infarctus, tension arterielle, cholesterol, greffe*, "
                    "dialyse, menopause, endometriose, asthme, insuline, covid long, "
                    "teste positif, infection*, opere du, operee du",
                 es="diagnostic*, diabet*, cancer*, tumor*, quimio*, radioterapia, oncolog*, "
                    "depresion*, deprimid*, ansiedad, ataque de panico, salud mental, "
                    "enfermedad*, enferm*, psiquiatr*, psicolog*, terapia*, antidepresivo*, "
                    "medicament*, tratamiento*, receta medica, farmacia*, embarazada*, "
                    "embarazo*, aborto*, fecundacion in vitro, epilep*, alzheimer, alzhéimer, "
                    "parkinson, autis*, tdah, bipolar, esquizofren*, anorexi*, bulimi*, suicid*, "
                    "discapacidad*, discapacitad*, silla de ruedas, dolor cronico, migrana*, "
                    "cirugia*, cirujan*, operacion de, operan de, hospital, hospitales, "
                    "hospitaliz*, urgencias, sintoma*, vih, sida, adiccion*, alcoholismo, "
                    "infarto, ictus, presion arterial, colesterol, trasplante*, dialisis, "
                    "menopausia, endometriosis, asma, insulina, covid persistente, di positivo, "
                    "infeccion*"),
             _ex(en="I was diagnosed with a chronic illness and started treatment | "
                    "My therapist helps me manage depression and anxiety | "
                    "Pregnant with our second child, morning sickness is rough",
                 fr="Mon médecin m'a prescrit un nouveau traitement pour ma maladie | "
                    "Je souffre de dépression et je vois un psychiatre",
                 es="Me diagnosticaron una enfermedad crónica y tomo medicamentos | "
                    "Estoy embarazada y tengo cita con la ginecóloga"),
             exclude=("retail therapy", "tropical depression", "great depression",
                      "depression tropicale", "depresion tropical", "stroke of", "terminal 1",
                      "terminal 2", "terminal 3", "terminal 4", "terminal 5",
                      "airport terminal", "bus terminal", "aids to navigation", "visual aids",
                      "teaching aids")),
    Category("religion", "Religion & beliefs", "Religious faith and practice, churches, mosques, "
             "synagogues and temples, prayer, religious holidays and observance, atheism and "
             "philosophical beliefs.",
             _kw(en="church, churches, churchgoer*, sunday mass, going to mass, midnight mass, "
                    "at mass, attend mass, pray*, god, jesus, christ, bible*, biblical, gospel*, "
                    "christian*, christianity, catholic*, protestant*, evangelical*, baptist*, "
                    "methodist*, mormon*, lds, muslim*, islam*, quran, koran, mosque*, ramadan, "
                    "eid, imam*, hijab*, halal, jewish, jew, jews, judaism, synagogue*, torah, "
                    "shabbat, sabbath, rabbi*, kosher, hanukkah, yom kippur, passover, hindu*, "
                    "diwali, buddhis*, buddhist*, sikh*, gurdwara, atheis*, agnostic*, religio*, "
                    "faith, worship*, during lent, for lent, ash wednesday, my pastor, "
                    "our pastor, priest*, nun, nuns, bishop*, pope, vatican, baptism, baptized, "
                    "baptised, communion, pilgrimage*, amen, hallelujah, psalm*, scripture*, "
                    "sermon*, theolog*, spiritual*, god bless, blessings from god, holy spirit, "
                    "salvation, savior, saviour",
                 fr="eglise*, messe, messes, prier, prie, prions, priere*, dieu, jesus, christ, "
                    "bible, evangile*, chretien*, christianisme, catholique*, protestant*, "
                    "evangelique*, musulman*, islam*, coran, mosquee*, ramadan, aid el kebir, "
                    "aid el fitr, aid moubarak, aid mubarak, imam*, hijab, voilee*, halal, juif*, "
                    "juive*, judaisme, synagogue*, torah, shabbat, rabbin*, casher, kasher, "
                    "hanoukka, kippour, hindou*, bouddhis*, sikh*, athee*, atheisme, agnostique*, "
                    "religi*, la foi, ma foi en, sa foi, foi chretienne, lieu de culte, pasteur*, "
                    "pretre*, eveque*, pape, vatican, bapteme, baptise*, communion, pelerinage*, "
                    "=Lourdes, careme, amen, alleluia, psaume*, sermon*, theolog*, spiritualite",
                 es="iglesia*, misa, misas, rezar, rezando, rezo, rezamos, reza, oracion*, orar, "
                    "dios, jesus, cristo, biblia, evangelio*, cristian*, catolic*, protestante*, "
                    "evangelic*, musulman*, islam*, coran, mezquita*, ramadan, imam*, hiyab, "
                    "halal, judio*, judia*, judaismo, sinagoga*, tora, shabat, rabino*, kosher, "
                    "januca, hindu*, budis*, sij, ateo, ateos, atea, ateas, ateismo, agnostic*, "
                    "religi*, fe en dios, la fe, mi fe, culto religioso, pastor evangelico, "
                    "sacerdote*, obispo*, papa francisco, sumo pontifice, vaticano, bautizo, "
                    "bautismo, comunion, peregrinacion, cuaresma, semana santa, amen, aleluya, "
                    "salmo*, sermon, teolog*, espiritualidad, bendiga, bendicion*, virgen maria"),
             _ex(en="We go to church every Sunday and pray together as a family | "
                    "Ramadan Mubarak, breaking the fast at the mosque tonight",
                 fr="Ma foi en Dieu me guide, je prie chaque soir | "
                    "Je suis athée, la religion ne joue aucun rôle dans ma vie",
                 es="Voy a misa los domingos y rezo el rosario | "
                    "Soy musulmán y celebro el Ramadán con mi familia"),
             exclude=("oh my god", "omg", "my god", "god knows", "thank god", "for god s sake",
                      "mon dieu", "dios mio", "por dios", "ay dios", "madre de dios",
                      "god of war", "church street", "church road", "church st", "good faith",
                      "bad faith", "faith in humanity", "je vous prie", "je t en prie",
                      "vous en prie")),
    Category("politics", "Political opinions", "Political opinions and affiliations: parties, "
             "candidates, elections and voting, governments and politicians, ideologies, protests "
             "and political campaigns.",
             _kw(en="election*, elect, elected, vote, votes, voting, voted, voter*, ballot*, "
                    "referendum*, election campaign, campaign trail, presidential campaign, "
                    "candidate*, president*, presidential, prime minister, senator*, senate, "
                    "congress*, parliament*, my mp, local mp, tory mp, labour mp, government*, "
                    "democrat*, republican*, gop, liberal*, conservative*, tory, tories, =Labour, "
                    "labour party, lib dem*, green party, snp, ukip, reform uk, brexit*, "
                    "remainer*, maga, trump*, biden, obama, clinton, hillary, bernie sanders, "
                    "kamala, desantis, macron, le pen, sunak, starmer, boris johnson, farage, "
                    "left wing, right wing, leftist*, far right, far left, socialis*, communis*, "
                    "fascis*, marxis*, anarchis*, libertarian*, politic*, protest, protests, "
                    "protester*, protestor*, protesting, political rally, impeach*, legislat*, "
                    "manifesto, canvass*, lobbying, lobbyist*, governor*, minister*, ministry, "
                    "pro life, pro choice, gun control, debate tonight, presidential debate, "
                    "dictator*, regime",
                 fr="election*, elu, elus, elue, voter, vote, votes, votez, voterai, voterons, "
                    "votants, scrutin*, urne*, referendum, candidat*, president*, "
                    "presidentielle*, legislatives, municipales, europeennes, premier ministre, "
                    "ministre*, depute*, senateur*, senat, assemblee nationale, parlement*, "
                    "gouvernement*, la gauche, de gauche, extreme gauche, la droite, de droite, "
                    "extreme droite, rassemblement national, front national, =RN, =LREM, "
                    "en marche, les republicains, parti socialiste, france insoumise, =LFI, "
                    "insoumis*, ecologistes, =EELV, reconquete, zemmour, melenchon, le pen, "
                    "macron, bardella, politique*, politicien*, manif*, militant*, "
                    "meeting politique, reforme des retraites, motion de censure, gilets jaunes, "
                    "dictateur*",
                 es="eleccion*, elecciones, votar, voto, votos, votare, votaremos, votantes, "
                    "votante, urnas, referendum, candidat*, president*, presidencial*, "
                    "primer ministro, ministro*, ministra*, diputad*, senador*, senado, "
                    "congreso, parlamento*, gobierno*, la izquierda, de izquierdas, "
                    "izquierdista*, la derecha, de derechas, derechista*, ultraderecha, "
                    "extrema derecha, =PSOE, =PP, partido popular, partido socialista, =Vox, "
                    "=Podemos, =Sumar, feijoo, abascal, ayuso, pedro sanchez, milei, =AMLO, "
                    "kirchner, peronis*, boric, politic*, manifestacion*, mitin, mitines, "
                    "campana electoral, amnistia, independentis*, dimitir, dimision, decreto, "
                    "dictador*, partido politico"),
             _ex(en="I will vote for the opposition party in the general election | "
                    "The president's policies are ruining the country",
                 fr="Je voterai pour ce candidat à l'élection présidentielle | "
                    "Le gouvernement doit démissionner après ce scandale",
                 es="Votaré a la izquierda en las próximas elecciones | "
                    "El partido del gobierno perdió la votación en el Congreso"),
             exclude=("labour day", "labour market", "in labour", "went into labour",
                      "vote for your favourite", "vote for your favorite", "fan vote",
                      "conservative estimate", "president of the club", "club president",
                      "presidente del club", "president du club", "manif pour tous")),
    Category("sexual_orientation", "Sexual orientation & sex life", "Sexual orientation, LGBTQ+ "
             "identities, coming out, gender identity, same-sex relationships, Pride, and a "
             "person's sex life.",
             _kw(en="gay*, lesbian*, bisexual*, i m bi, queer*, lgbt*, lgbtq*, lgbtqia*, "
                    "homosexual*, heterosexual*, pansexual*, asexual*, trans, transgender*, "
                    "non binary, nonbinary, came out as, came out to, coming out as, "
                    "coming out to, come out as, pride month, pride parade, pride march, "
                    "happy pride, gay pride, drag queen*, grindr, same sex, gay marriage, "
                    "marriage equality, homophob*, transphob*, sex life, sexual orientation, "
                    "sexuality, two dads, two moms, two mums",
                 fr="gay*, gai, gais, lesbienne*, bisexuel*, queer*, lgbt*, homosexu*, "
                    "heterosexu*, trans, transgenre*, non binaire*, coming out, "
                    "marche des fiertes, mois des fiertes, fiertes lgbt*, gay pride, drag queen*, "
                    "mariage pour tous, homophob*, transphob*, vie sexuelle, "
                    "orientation sexuelle, sexualite, deux papas, deux mamans",
                 es="gay*, gai, gais, lesbiana*, bisexual*, queer*, lgtb*, lgbt*, homosexual*, "
                    "heterosexual*, trans, transexual*, transgenero*, no binari*, "
                    "salir del armario, sali del armario, salio del armario, orgullo lgtb*, "
                    "orgullo lgbt*, orgullo gay, dia del orgullo, marcha del orgullo, "
                    "drag queen*, matrimonio igualitario, homofob*, transfob*, vida sexual, "
                    "orientacion sexual, sexualidad, dos papas, dos mamas"),
             _ex(en="I came out as gay to my family last year | "
                    "Celebrating Pride with my girlfriend, proud to be queer",
                 fr="J'ai fait mon coming out, je suis lesbienne et fière",
                 es="Salí del armario, soy bisexual y estoy orgulloso"),
             exclude=("gay lussac", "trans siberian", "trans canada", "trans europe",
                      "trans atlantic", "trans fat", "trans fats")),
    Category("ethnicity", "Racial or ethnic origin", "Racial or ethnic origin and heritage, "
             "racism and discrimination, ethnic and indigenous communities, migrant background.",
             _kw(en="racism, racist*, racial*, ethnic*, black woman, black women, black man, "
                    "black men, black people, black community, black lives matter, blm, "
                    "african american*, afro*, latino*, latina*, latinx, hispanic*, chicano*, "
                    "asian american*, asian community, anti asian, indigenous, native american*, "
                    "first nations, aboriginal, roma community, roma people, the roma, gypsy, "
                    "gypsies, traveller community, my heritage, heritage month, my roots, "
                    "ancestry, mixed race, biracial, immigrant*, xenophob*, antisemit*, "
                    "white supremac*, white privilege, people of color, people of colour, poc, "
                    "bipoc, minorities, apartheid, segregation, racial profiling, slur*",
                 fr="racisme, raciste*, racial*, raciale*, ethni*, mes origines, ses origines, "
                    "d origine, femme noire, femmes noires, homme noir, hommes noirs, "
                    "personnes noires, communaute noire, afro*, maghrebin*, arabe*, beur*, metis, "
                    "metisse*, roms, les roms, gitan*, tsigane*, autochtone*, indigene*, "
                    "antisemit*, xenophob*, discrimination*, controle au facies, "
                    "controles au facies, facies, immigre*, diaspora, couleur de peau",
                 es="racismo, racista*, racial*, etnia*, etnic*, mujer negra, mujeres negras, "
                    "hombre negro, personas negras, comunidad negra, afrodescendiente*, afro*, "
                    "latino*, latina*, hispano*, hispana*, indigena*, pueblos originarios, "
                    "mapuche*, quechua, aimara, gitano*, gitana*, mestiz*, mulat*, mis raices, "
                    "mis origenes, antisemit*, xenofob*, discriminacion*, inmigrante*, diaspora, "
                    "color de piel"),
             _ex(en="As a Black woman I deal with racism at work every day | "
                    "Proud of my indigenous heritage and my ancestors",
                 fr="En tant que femme d'origine maghrébine, je subis des discriminations",
                 es="Soy gitana y orgullosa de mis raíces"),
             exclude=("afro hair", "appellation d origine", "origine controlee",
                      "origine protegee", "pays d origine")),
    Category("trade_union", "Trade union membership", "Trade union membership and activity: "
             "unions, strikes, picket lines, shop stewards and collective bargaining.",
             _kw(en="trade union*, labor union*, labour union*, my union, our union, "
                    "the union voted, union member*, union rep*, union meeting, join a union, "
                    "join your union, unionis*, unioniz*, union dues, on strike, go on strike, "
                    "general strike, strike action, voted to strike, picket*, teamsters, afl cio, "
                    "unison, =GMB, =Unite, shop steward*, collective bargaining, "
                    "collective agreement, walkout, labor dispute",
                 fr="syndicat*, syndical*, syndique*, syndiquee*, intersyndicale, =CGT, =CFDT, "
                    "force ouvriere, sud rail, =UNSA, greve*, grevist*, piquet de greve, "
                    "delegue syndical, deleguee syndicale, convention collective",
                 es="sindicato*, sindical*, sindicalist*, afiliado al sindicato, "
                    "afiliada al sindicato, me afilie, afiliate, =CCOO, comisiones obreras, "
                    "=UGT, =CGT, =CNT, huelga*, huelguista*, piquete*, delegado sindical, "
                    "delegada sindical, convenio colectivo, comite de empresa"),
             _ex(en="Our trade union voted to strike for better pay | "
                    "I joined the union at work and became a shop steward",
                 fr="Je suis syndiqué à la CGT, grève demain devant l'usine",
                 es="Mi sindicato convoca huelga, estaré en el piquete"),
             exclude=("picket fence", "white picket")),
)

INTERESTS: dict[int, Interest] = load_topics()
_BY_PATH = {it.path.lower(): i for i, it in INTERESTS.items()}
