"""The special-category detector: keyword matching, the embedder's prototypes, targeting refusal,
and its precision/recall on an invented labelled set (no real post text: every sentence below was
written for this test).

Labelling rules (the hard cases are the point of the set):
- a post is sensitive when it reveals or discusses a special category (GDPR Art. 9): a condition,
  treatment or pregnancy (health); faith, observance or its absence (religion); a party, vote or
  political stance (politics); orientation, gender identity, sex life (sexual_orientation); racial
  or ethnic origin, racism (ethnicity); union membership or action (trade_union);
- exercise is fitness, not health ("I ran a marathon"); "healthy breakfast" is food; a TV show
  named Doctor Who is TV; "party", "fiesta", "partido" (a match), "Pride and Prejudice", "Labour
  Day", "Union Station" are not politics, orientation or unions;
- a church or cathedral as a sight ("the church bells in the old town") and cultural holidays
  (Christmas market, Easter egg hunt) are labelled *neutral*: they reveal no belief. The keyword
  matcher flags the church ones anyway ("church" is a keyword: recall first); those are counted
  as false positives, on purpose.
"""
from __future__ import annotations

import pytest

from townsquare.ads.sensitive import (
    KeywordMatcher,
    SensitiveDetector,
    evaluate,
    prepare,
)
from townsquare.ads.taxonomy import INTERESTS, SENSITIVE

# --- the invented labelled set --------------------------------------------------------------------
H, R, P = "health", "religion", "politics"
S, E, T = "sexual_orientation", "ethnicity", "trade_union"

LABELLED: list[tuple[str, frozenset[str]]] = [(t, frozenset([c])) for c, texts in {
    H: [
        "Just got diagnosed with type 2 diabetes, time to change everything",
        "My anxiety has been really bad this week, therapy is the only thing helping",
        "Chemo round three done today. Tired but hopeful",
        "Anyone else gain weight on antidepressants?",
        "We're expecting our first baby in March! 12 weeks pregnant",
        "Ten years living with HIV and still here",
        "My inhaler ran out and the pharmacy is closed, great",
        "Struggling with depression since winter started",
        "Knee surgery tomorrow morning, wish me luck",
        "My son was just diagnosed with ADHD",
        "On m'a diagnostiqué un cancer du sein le mois dernier",
        "Ma dépression revient chaque hiver, heureusement je vois une psychologue",
        "Enceinte de six mois et toujours des nausées",
        "Mon traitement contre l'épilepsie me fatigue énormément",
        "Rendez-vous chez l'oncologue demain matin, j'ai peur",
        "Je vis avec la maladie de Crohn depuis mes vingt ans",
        "Crise d'angoisse dans le métro ce matin",
        "Mon fils est autiste et l'école ne suit pas",
        "Me acaban de diagnosticar diabetes tipo 1",
        "Llevo meses con ansiedad y no duermo nada",
        "Estoy embarazada de tres meses y muy feliz",
        "Mi madre tiene alzhéimer y ya no me reconoce",
        "Empecé la quimioterapia esta semana",
        "Tomo antidepresivos desde hace un año",
        "Operación de rodilla mañana en el hospital",
    ],
    R: [
        "Going to Mass this Sunday with the whole family",
        "Ramadan Mubarak to all my Muslim friends",
        "Reading the Bible every morning has changed my life",
        "As an atheist I don't celebrate Easter",
        "Shabbat shalom from our home to yours",
        "Our church youth group is praying for you all",
        "Fasting for Lent again this year",
        "Jesus is my savior and my strength",
        "Prayed at the temple with my grandmother, she is a devout Hindu",
        "Je vais à la messe tous les dimanches",
        "Bon ramadan à tous les musulmans",
        "Ma foi en Dieu m'aide à traverser cette épreuve",
        "Le pèlerinage à Lourdes était un moment très fort",
        "Je suis athée et fière de l'être",
        "Prière du vendredi à la mosquée avec mon père",
        "Baptême de ma fille à l'église samedi",
        "Joyeuses fêtes de Hanoukka à nos amis juifs",
        "Voy a misa todos los domingos con mi abuela",
        "Que Dios te bendiga siempre, hermano",
        "Soy católico practicante",
        "Semana Santa en familia, rezando juntos",
        "Ramadán Mubarak a la comunidad musulmana",
        "Leyendo la Biblia antes de dormir",
        "Soy ateo y no creo en ninguna religión",
    ],
    P: [
        "I'll be voting Labour at the next general election",
        "The Republican candidate lied again in tonight's debate",
        "Proud to volunteer for the Democratic campaign this fall",
        "Brexit was the worst decision this country ever made",
        "Trump should never be president again",
        "Call your senator and demand a vote on the bill",
        "Canvassing for the Green Party this weekend",
        "The Tories have wrecked this country",
        "Je voterai pour la gauche au second tour",
        "Macron doit démissionner",
        "Meeting du Rassemblement National ce soir à Lille",
        "Les élections législatives approchent, allez voter",
        "Militant socialiste depuis vingt ans",
        "Le député de ma circonscription ne répond jamais",
        "Marine Le Pen a gagné le débat hier soir",
        "Votaré al PSOE en las próximas elecciones",
        "Podemos ha traicionado a sus votantes",
        "El gobierno debe dimitir ya",
        "Vox no representa a los españoles",
        "Mitin del PP esta tarde en Madrid",
        "Soy de izquierdas y nunca votaría a la derecha",
        "El presidente firmó un decreto polémico",
        "El Congreso aprobó la ley de amnistía",
    ],
    S: [
        "Came out to my parents as gay last night",
        "Happy Pride month from a proud lesbian!",
        "Being bisexual doesn't mean I'm confused",
        "Looking for other queer folks in Manchester",
        "Any LGBTQ friendly bars in Lisbon?",
        "Trans rights are human rights",
        "Tips for a better sex life after 50?",
        "My husband and I are two dads raising a daughter",
        "J'ai fait mon coming out hier soir",
        "Fière d'être lesbienne",
        "Marche des fiertés à Paris ce samedi",
        "Je suis bisexuel et j'en ai marre des clichés",
        "Bar gay dans le Marais, ambiance incroyable",
        "Les personnes trans méritent le respect",
        "Appli de rencontre pour hommes gays, des conseils ?",
        "Salí del armario con mi familia",
        "Orgullo LGTB en Madrid este fin de semana",
        "Soy lesbiana y estoy orgullosa",
        "Mi novio y yo somos pareja gay desde hace años",
        "Ser bisexual no es una fase",
        "Las personas trans merecen derechos",
        "Matrimonio igualitario ya",
    ],
    E: [
        "As a Black woman in tech I face this every day",
        "Proud of my Mexican heritage",
        "Racism against Asian Americans has exploded",
        "Being Latino in this town means getting stopped by police",
        "Our Roma community is still discriminated against",
        "Indigenous people were here first",
        "I'm biracial and tired of the question where are you really from",
        "En tant que femme noire, je subis du racisme au quotidien",
        "Fier de mes origines algériennes",
        "Les Roms sont encore discriminés en France",
        "Discrimination à l'embauche pour les personnes d'origine maghrébine",
        "Je suis métisse et on me demande toujours d'où je viens",
        "Le racisme anti-asiatique a augmenté pendant la pandémie",
        "Contrôles au faciès dans mon quartier tous les jours",
        "Como mujer negra sufro racismo todos los días",
        "Orgulloso de mis raíces indígenas",
        "Soy gitano y a mucha honra",
        "Discriminación contra los latinos en Estados Unidos",
        "Mi abuela era mapuche",
        "Los afrodescendientes merecen reconocimiento",
        "Racismo en el fútbol español otra vez",
        "Soy mestiza y orgullosa de mis raíces",
    ],
    T: [
        "Proud union member for 15 years, join your union!",
        "Our union voted to strike next week",
        "Teamsters local meeting tonight at the hall",
        "The shop steward fought for my job",
        "Collective bargaining won us a 5% raise",
        "Picket line at the factory gates since 6am",
        "Signed up with a trade union today",
        "Nurses are on strike for safe staffing",
        "Je suis syndiqué à la CGT depuis dix ans",
        "Assemblée générale du syndicat demain",
        "Grève reconduite par l'intersyndicale",
        "Mon délégué syndical m'a bien défendu",
        "Adhérez à un syndicat, c'est votre droit",
        "Piquet de grève devant l'usine",
        "La CFDT a signé l'accord",
        "Me afilié a CCOO la semana pasada",
        "El sindicato convoca huelga general",
        "Delegado sindical en mi empresa desde enero",
        "Asamblea de trabajadores del sindicato mañana",
        "UGT y CCOO firman el convenio colectivo",
        "Piquete informativo en la fábrica",
        "Huelga del metro convocada por los sindicatos",
    ],
}.items() for t in texts]

# Neutral posts, many about advertiser interests, with hard negatives marked "# hard".
NEUTRAL: list[str] = [
    "I ran a marathon this morning, new personal best!",                      # hard: fitness
    "The church bells in the old town ring every hour",                      # hard: a sight
    "Best tacos in Austin, hands down",
    "Arsenal won 3-1, what a game",
    "New phone battery lasts two whole days",
    "Booked flights to Tokyo for April!",
    "Our dog learned to open the fridge",
    "Planting tomatoes in the backyard this weekend",
    "Just finished a great mystery novel",
    "The Lakers need a better bench",
    "Gym session done: squats and deadlifts",
    "Hiking the Appalachian trail next summer",
    "Stock market hit a record high today",
    "Our startup just closed its seed round",
    "Sunset photography at the beach",
    "Concert tickets sold out in minutes",
    "Electric cars are getting cheaper every year",
    "The kids start school next week, backpacks ready",
    "Heavy rain expected tomorrow in the north",
    "Volunteering at the food bank this Saturday",
    "New season of my favourite show drops Friday",
    "Healthy breakfast: oatmeal with berries",                               # hard: healthy
    "Doctor Who is back on TV tonight",                                      # hard: doctor
    "Party at my place tonight, bring snacks",                               # hard: party
    "Pride and Prejudice is still my favourite book",                        # hard: pride
    "Labour Day weekend barbecue with the neighbours",                       # hard: labour
    "Union Station is packed this morning",                                  # hard: union
    "Christmas market opens downtown on Friday",                             # hard: holiday
    "Oh my god this pizza is amazing",                                       # hard: god
    "Vote for your favourite dessert in the poll",                           # hard: vote
    "J'ai couru un semi-marathon ce matin",                                  # hard: fitness
    "Les cloches de l'église du vieux village sonnent à midi",               # hard: a sight
    "Meilleur croissant de Paris, sans hésiter",
    "Le PSG a encore gagné ce soir",
    "Nouveau jeu vidéo acheté hier",
    "Vacances à Marseille cet été",
    "Mon chat dort toute la journée",
    "Recette de ratatouille facile et rapide",
    "Fête de la musique ce soir, concerts partout",
    "Randonnée dans les Alpes ce week-end",
    "La bourse de Paris en hausse",
    "Rentrée scolaire lundi pour les enfants",
    "Orage prévu cet après-midi",
    "Exposition de photos au musée",
    "Soirée entre amis, on fait la fête",                                    # hard: fête
    "Séance de sport à la salle ce midi",
    "Chasse aux œufs de Pâques dans le jardin",                              # hard: holiday
    "Mon Dieu, quel embouteillage ce matin",                                 # hard: dieu
    "Je vous en prie, entrez",                                               # hard: prier
    "Il a fait preuve de mauvaise foi pendant le match",                     # hard: foi
    "Corrí diez kilómetros esta mañana",                                     # hard: fitness
    "Las campanas de la catedral suenan en el casco antiguo",                # hard: a sight
    "Las mejores tapas de Sevilla",
    "El Real Madrid ganó la liga",
    "Viaje a Cancún este verano",
    "Mi perro adora la playa",
    "Receta de paella valenciana",
    "Nuevo móvil con una cámara increíble",
    "Concierto de rock este sábado",
    "La bolsa cae un dos por ciento",
    "Fiesta de cumpleaños de mi hermana",                                    # hard: fiesta
    "El partido terminó cero a cero",                                        # hard: partido
    "Partido de baloncesto esta noche",                                      # hard: partido
    "Podemos ir a la playa mañana si hace sol",                              # hard: podemos
    "Dios mío, qué calor hace hoy",                                          # hard: dios
    "Leyendo una novela de misterio",
    "Voluntariado en el comedor social",
    "Cultivo tomates en el balcón",
    "Compré un coche eléctrico",
    "Feria del libro en el parque este fin de semana",
    "Estrenan una serie nueva en Netflix",
    "Entrenamiento de crossfit muy intenso",
]

ALL = LABELLED + [(t, frozenset()) for t in NEUTRAL]

# Written after the keywords and threshold were frozen, and never tuned on: paraphrases that
# avoid the obvious words, so the estimate is less flattering than the one on ALL above.
HELD_OUT: list[tuple[str, frozenset[str]]] = [(t, frozenset([c])) for c, texts in {
    H: ["My blood sugar was all over the place again today",
        "Third week off work, my back problem keeps getting worse and the physio can't help",
        "Started seeing a counsellor about my panic",
        "The nurse said the lump is benign, such a relief",
        "J'ai fait une fausse couche la semaine dernière",
        "Mes crises de migraine m'empêchent de travailler",
        "Mi hermano está en rehabilitación por el alcohol",
        "Me han puesto un marcapasos, ya estoy en casa"],
    R: ["The imam's talk after Friday prayers was beautiful",
        "Lighting the menorah with the kids tonight",
        "I stopped believing in God years ago",
        "Confirmation class every Wednesday at the parish",
        "Le curé de la paroisse a béni les rameaux",
        "Je porte le voile par conviction",
        "Fui a la procesión con la cofradía de mi barrio",
        "Gracias a Dios salió todo bien en la operación"],
    P: ["Can't believe people still support that party after the scandal",
        "Knocked on 200 doors for our candidate today",
        "The opposition leader's speech was a disgrace",
        "Ce gouvernement méprise les citoyens",
        "J'ai voté blanc au premier tour",
        "Los independentistas han ganado en Cataluña",
        "Hay que echar a este gobierno corrupto",
        "My local councillor defected to the nationalists"],
    S: ["My wife and I just celebrated our tenth anniversary, two brides!",
        "Finally told my friends I'm into guys",
        "Drag brunch was amazing this weekend",
        "Mon copain et moi, on va se pacser",
        "Je suis asexuelle et ça n'a rien de bizarre",
        "Mi novia y yo nos casamos el mes que viene, somos dos chicas",
        "Ser trans en un pueblo pequeño es difícil",
        "Grindr is a wasteland tonight"],
    E: ["My grandparents came from Punjab and I keep their language alive",
        "Tired of being followed in shops because of my skin colour",
        "Afro-Caribbean community centre reopens next month",
        "On m'a refusé l'appartement à cause de mon nom arabe",
        "Les Antillais de l'Hexagone se mobilisent",
        "Como hijo de inmigrantes bolivianos, nunca me sentí de aquí",
        "Mi familia es de origen quechua",
        "Anti-Black comments in the replies again"],
    T: ["Dues paid, card in my wallet: proud member of local 32",
        "Management refuses to meet our reps",
        "The walkout starts at noon, bring a sign",
        "On débraye à 14h pour les salaires",
        "Réunion de la section syndicale ce soir",
        "Los trabajadores paran la planta mañana por el convenio",
        "Mi delegada de CCOO me ayudó con el despido",
        "Joined the nurses' union this morning"],
}.items() for t in texts] + [(t, frozenset()) for t in [
    "Legs are sore after yesterday's spin class",
    "The cathedral roof is stunning at sunset",
    "Grandma's apple pie recipe never fails",
    "Our team lost on penalties, gutted",
    "Selling my old bike, barely used",
    "The museum's new wing opens in June",
    "Le tram est encore en panne ce matin",
    "Les soldes d'hiver commencent mercredi",
    "Petit déjeuner en terrasse au soleil",
    "Mon fils a appris à faire du vélo",
    "Nuevo récord de temperatura en julio",
    "El tren a Valencia llega con retraso",
    "Mi gata tuvo cuatro gatitos",
    "Los fuegos artificiales del puerto fueron preciosos",
    "My garden is finally blooming",
    "Watching the F1 race with friends",
    "Cooking class with my partner tonight",
    "Nouvelle saison de ma série préférée",
]]


def test_the_labelled_set_is_big_enough_and_covers_three_languages():
    per_cat = {c: sum(c in labels for _, labels in LABELLED) for c in SENSITIVE}
    assert min(per_cat.values()) >= 20, per_cat
    assert len(NEUTRAL) >= 60
    texts = [t for t, _ in ALL + HELD_OUT]
    assert len(set(texts)) == len(texts)                        # no duplicates


# --- keyword matching -----------------------------------------------------------------------------
def test_prepare_folds_and_splits_tags_keeping_positions():
    plain, cased = prepare("Réunion #SantéMentale @CityOps https://t.co/x !")
    assert plain == " reunion santementale sante mentale cityops city ops "
    assert cased.lower() == plain


def test_lowercase_hashtags_split_against_the_vocabulary():
    m = KeywordMatcher(SENSITIVE)
    assert m.match("#mentalhealth matters") == {H}
    assert m.match("#prayfornepal") == {R}
    assert m.match("#parkrun this morning") == set()


@pytest.mark.parametrize("text, cats", [
    ("Catholics and Protestants", {R}),                          # plural of a keyword
    ("Je suis diabétique", {H}),                                  # prefix, accents folded
    ("PODEMOS GANAR", set()),                                     # cased keyword: not all caps
    ("Mitin de Podemos en Sevilla", {P}),
    ("the transatlantic flight", set()),                          # "trans" is a whole word only
    ("Happy Labour Day!", set()),
    ("Labour won the seat", {P}),
    ("oh my god", set()),
    ("God is good", {R}),
    ("tropical depression forming in the gulf", set()),
    ("I lent my bike to a friend", set()),
])
def test_keyword_rules(text, cats):
    assert KeywordMatcher(SENSITIVE).match(text) == cats


def test_every_category_has_its_own_hits_and_interests_match_too():
    m = KeywordMatcher(INTERESTS)
    assert m.match("Booked a hotel for our trip") == {332, 340}    # travel, hotels
    assert m.match("I ran a marathon") == {97, 323}                 # fitness, running
    assert 325 in m.match("Golazo, qué partido de fútbol")          # soccer
    hits = KeywordMatcher(SENSITIVE).hits("vote for the green party")
    assert hits == {P: ["vote", "green party"]}


def test_an_empty_table_is_refused():
    with pytest.raises(ValueError):
        KeywordMatcher({})


# --- the detector ---------------------------------------------------------------------------------
def test_keyword_detector_on_the_labelled_set():
    m = evaluate(SensitiveDetector(), ALL)
    print("\nkeywords only:", m)
    assert m["recall"] >= 0.95 and m["precision"] >= 0.90


def test_batch_equals_categories():
    d = SensitiveDetector()
    texts = [t for t, _ in ALL[:30]]
    assert d.batch(texts) == [d.categories(t) for t in texts]
    assert d.batch([]) == []


SENSITIVE_TARGETS = [
    "people with diabetes", "Catholics", "Labour voters", "LGBT singles", "Hispanic families",
    "union members", "expecting mothers", "Muslims in Paris", "personnes diabétiques",
    "votantes del PSOE", "gay men 25-34", "cancer patients", "pro-life voters", "Jewish students",
    "people with depression", "evangelicals", "Republicans", "personas con ansiedad",
    "conservative families", "african american women", "churches", "socialistas",
    "gente de izquierdas", "personnes handicapées", "new immigrants", "people in recovery",
]
ORDINARY_TARGETS = [
    "runners", "football fans", "travelers to Spain", "dog owners", "home cooks", "new parents",
    "gamers", "amateurs de vin", "aficionados al fútbol", "students", "photographers",
    "people who like hiking", "coffee lovers", "small business owners", "car buyers",
    "fashion lovers", "parents of toddlers", "yoga fans", "book clubs", "investors", "jardineros",
    "cyclistes", "electric vehicles", "running shoes", "vegan recipes", "Paris hotels",
    "black friday deals",
]


@pytest.mark.parametrize("target", SENSITIVE_TARGETS)
def test_sensitive_targets_are_refused(target):
    assert SensitiveDetector().is_sensitive_target(target), target


@pytest.mark.parametrize("target", ORDINARY_TARGETS)
def test_ordinary_targets_pass(target):
    assert SensitiveDetector().is_sensitive_target(target) == set(), target


# --- with the embedder ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def e5():
    from townsquare.embed.models import get_embedder
    try:
        return get_embedder("e5-small-int8", num_threads=2)
    except ImportError as e:                                   # the one-time export needs torch
        pytest.skip(str(e))


def test_embedder_detector_on_the_labelled_set(e5):
    kw = evaluate(SensitiveDetector(), ALL)
    both = evaluate(SensitiveDetector(e5), ALL)
    print("\nkeywords + e5:", both)
    assert both["recall"] >= kw["recall"] and both["recall"] >= 0.97
    assert both["precision"] >= 0.85


def test_embedder_targets(e5):
    d = SensitiveDetector(e5)
    assert all(d.is_sensitive_target(t) for t in SENSITIVE_TARGETS)
    assert [t for t in ORDINARY_TARGETS if d.is_sensitive_target(t)] == []
    # Found by the embedder alone (no keyword names it); the second was a known miss against the
    # 26-category taxonomy and is found since the margin competes with the Topics taxonomy.
    assert d.is_sensitive_target("people struggling with their weight") == {H}
    assert d.is_sensitive_target("single women looking for a husband") == {"sexual_orientation"}


def test_held_out_set_with_the_embedder(e5):
    """Measured once, after the keywords and thresholds were frozen: see the module docstring of
    townsquare.ads.sensitive. Floors a little under the measurement, so a change that makes the
    detector worse fails here."""
    kw, both = evaluate(SensitiveDetector(), HELD_OUT), evaluate(SensitiveDetector(e5), HELD_OUT)
    print("\nheld out, keywords:", kw, "\nheld out, keywords + e5:", both)
    # 0.98 / 0.90 against the 26-category taxonomy, 0.94 / 0.90 against the Topics taxonomy
    # (issue 19: 167 topics in the margin instead of 26 + 3 news-like anchors; same threshold rule).
    assert both["recall"] >= 0.93 and both["precision"] >= 0.85
    assert both["recall"] > kw["recall"] + 0.4                 # the embedder earns its keep


def test_precomputed_vectors_give_the_same_answer(e5):
    d = SensitiveDetector(e5)
    texts = [t for t, _ in ALL[::7]]
    assert d.batch(texts, vectors=e5.passages(texts)) == d.batch(texts)


def test_an_unknown_model_needs_an_explicit_threshold(e5):
    class Other:
        name, dim = "other-model", 384

        def passages(self, texts):
            return e5.passages(texts)

    with pytest.raises(ValueError, match="threshold"):
        SensitiveDetector(Other())
    assert SensitiveDetector(Other(), threshold=0.9).categories("Catholics") == {R}
