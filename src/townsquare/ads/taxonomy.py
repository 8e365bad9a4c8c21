"""The ads taxonomy: interest categories advertisers may target, and the special categories
nobody may target, each with multilingual keywords, a description and invented examples.

    >>> INTERESTS["travel"].name, sorted(INTERESTS["travel"].keywords)
    ('Travel', ['en', 'es', 'fr'])
    >>> sorted(SENSITIVE)
    ['ethnicity', 'health', 'politics', 'religion', 'sexual_orientation', 'trade_union']
    >>> INTERESTS["football"].parent
    'sports'

This module is data; ``townsquare.ads.sensitive`` matches it against text (``KeywordMatcher``)
and embeds it (``prototypes``). Keyword syntax (one comma-separated string per language, written
naturally with accents, folded when compiled):

- ``word`` or ``two words``: whole words of the folded text (case and accents removed), the last
  word also with a plural ``s``/``es``/``x`` (``catholic`` matches "Catholics");
- ``prefix*``: any word starting so (``diabet*``: diabetes, diabetic, "diabète", diabético);
- ``=Word``: matched case-sensitively (accents still removed), for names that are also common
  words: ``=Podemos`` (a Spanish party) but not "podemos ir" (we can go) mid-sentence;
- ``exclude`` phrases are cut out of the text before the category's keywords run ("oh my god" is
  not religion, "Labour Day" not politics).

Keywords are not scoped to a language when matching (posts mix languages and ``lang`` is often
missing), so a keyword must not be a common word of another of the three languages: French "ai"
(j'ai) rules out "ai" for artificial intelligence, Spanish "una" rules out "uña" (nail).
Interests form a two-level tree (``parent``): a post about football is also about sports.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

LANGS = ("en", "fr", "es")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Interest:
    """One category. ``keywords`` and ``examples`` map a language code to phrases and invented
    example sentences; the description and examples make the category's embedding prototype."""

    id: str
    name: str
    description: str
    keywords: Mapping[str, tuple[str, ...]]
    examples: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    parent: str | None = None

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ValueError(f"interest id must be snake_case ascii: {self.id!r}")
        if not self.name.strip() or not self.description.strip():
            raise ValueError(f"{self.id}: a name and a description are required")
        missing = [lang for lang in LANGS if not self.keywords.get(lang)]
        if missing:
            raise ValueError(f"{self.id}: no keywords for {', '.join(missing)}")
        for lang, kws in self.keywords.items():
            for k in kws:
                if not k.strip() or k.strip() in ("*", "="):
                    raise ValueError(f"{self.id}/{lang}: empty keyword")


def _kw(**langs: str) -> dict[str, tuple[str, ...]]:
    """``en="a, b c"`` -> ``{"en": ("a", "b c")}``."""
    return {lang: tuple(k.strip() for k in s.split(",") if k.strip()) for lang, s in langs.items()}


def _ex(**langs: str) -> dict[str, tuple[str, ...]]:
    """Example sentences, ``|``-separated per language."""
    return {lang: tuple(k.strip() for k in s.split("|") if k.strip()) for lang, s in langs.items()}


def _table(*items: Interest) -> dict[str, Interest]:
    out: dict[str, Interest] = {}
    for it in items:
        if it.id in out:
            raise ValueError(f"duplicate interest id {it.id!r}")
        out[it.id] = it
    for it in out.values():
        if it.parent is not None and it.parent not in out:
            raise ValueError(f"{it.id}: unknown parent {it.parent!r}")
    return out


# --- interests: what advertisers may target -----------------------------------------------------
# Keywords favor words that say what a post is about, not words that merely occur in it; anything
# that would reveal a special category (a diet for a disease, a pregnancy, a place of worship)
# belongs to SENSITIVE below, never here: fitness is exercise, not health conditions; parenting
# is children and family life, not pregnancy.
INTERESTS: dict[str, Interest] = _table(
    Interest("travel", "Travel", "Trips, holidays, flights, hotels, sightseeing and tourism.",
             _kw(en="travel*, trip, trips, vacation*, holiday*, flight*, airport*, hotel*, "
                    "hostel*, sightseeing, tourist*, tourism, passport, backpacking, road trip, "
                    "beach resort, cruise*, itinerary, wanderlust, jet lag, old town, transport*, "
                    "transit",
                 fr="voyage*, vacances, vol, vols, aeroport*, hotel*, auberge de jeunesse, "
                    "tourism*, touriste*, sejour*, croisiere*, passeport, itineraire*, escapade*, "
                    "road trip, transport*",
                 es="viaje*, viajar, vacaciones, vuelo*, aeropuerto*, hotel*, hostal*, turism*, "
                    "turista*, crucero*, pasaporte, itinerario*, escapada*, mochilero*, "
                    "transporte*"),
             _ex(en="Booked flights and a hotel for our summer trip to Portugal",
                 fr="On part en vacances à Lisbonne, billets d'avion réservés",
                 es="Viaje de fin de semana a Roma, el hotel tiene vistas increíbles")),
    Interest("food_drink", "Food & drink", "Restaurants, cooking, recipes, baking, coffee, wine "
             "and beer.",
             _kw(en="food*, foodie*, restaurant*, recipe*, cooking, cook, baking, bake*, brunch, "
                    "dinner, lunch, breakfast, coffee, espresso, wine*, beer*, cocktail*, pizza*, "
                    "burger*, taco*, sushi, sourdough, chef*, delicious, tasty, bbq, barbecue",
                 fr="cuisine*, recette*, restaurant*, resto*, gastronom*, patisserie*, "
                    "boulangerie*, croissant*, diner, dejeuner, petit dejeuner, cafe, vin, vins, "
                    "biere*, fromage*, chef*, delicieux, miam, ratatouille, apero*",
                 es="comida*, cocina*, cocinar, receta*, restaurante*, gastronom*, tapas, "
                    "paella*, cena, almuerzo, desayuno, cafe, vino*, cerveza*, chef*, delicios*, "
                    "reposteria, panaderia*, asado*"),
             _ex(en="Trying a new pasta recipe tonight, the sauce smells amazing",
                 fr="Meilleure boulangerie du quartier, les croissants sont parfaits",
                 es="Probamos unas tapas buenísimas en el centro")),
    Interest("sports", "Sports", "Watching and following sports, teams, matches and athletes.",
             _kw(en="sport*, match, game day, tournament*, championship*, league, playoff*, "
                    "olympic*, athlete*, tennis, golf, rugby, cricket, baseball, hockey, nfl, "
                    "formula 1, f1, cycling, tour de france, boxing, ufc, stadium*",
                 fr="sport*, match, matchs, tournoi*, championnat*, ligue, jeux olympiques, "
                    "athlete*, tennis, golf, rugby, cyclisme, tour de france, boxe, stade*, "
                    "formule 1, handball",
                 es="deporte*, deportivo*, torneo*, campeonato*, liga, olimpiada*, "
                    "juegos olimpicos, atleta*, tenis, golf, rugby, ciclismo, "
                    "la vuelta a espana, boxeo, estadio*, formula 1, partido de tenis"),
             _ex(en="What a final! The tennis championship went to five sets",
                 fr="Le championnat de rugby reprend ce week-end au stade",
                 es="El torneo de tenis de Madrid empieza mañana")),
    Interest("football", "Football (soccer)", "Association football: clubs, leagues, transfers.",
             _kw(en="football, soccer, premier league, champions league, world cup, goalkeeper, "
                    "striker, penalty, =Arsenal, =Chelsea, =Liverpool, man utd, man city, "
                    "real madrid, fc barcelona, psg, messi, ronaldo, mbappe, =VAR",
                 fr="football, le foot, du foot, match de foot, ligue 1, ligue des champions, "
                    "coupe du monde, gardien, buteur, penalty, psg, =OM, =OL, mbappe, les bleus, "
                    "mercato",
                 es="futbol, futbolista*, la liga, laliga, champions, el mundial, "
                    "copa del mundo, portero, goleador*, penalti, real madrid, barca, atletico, "
                    "messi, la seleccion, gol, goles, partido de futbol, el partido"),
             _ex(en="Great goal in the second half, the Premier League title race is on",
                 fr="Le PSG a gagné le match de Ligue 1 hier soir",
                 es="Golazo en el último minuto, qué partido de fútbol"),
             parent="sports"),
    Interest("basketball", "Basketball", "Basketball leagues, teams and players.",
             _kw(en="basketball, nba, wnba, euroleague, dunk*, three pointer, lakers, celtics, "
                    "warriors, lebron, steph curry, march madness, hoops",
                 fr="basket, basketball, nba, euroligue, dunk*",
                 es="baloncesto, basket, nba, acb, euroliga, partido de baloncesto"),
             _ex(en="The Lakers won by ten, great night for basketball",
                 fr="Match de basket ce soir, la NBA reprend",
                 es="Partido de baloncesto de la ACB esta noche"),
             parent="sports"),
    Interest("technology", "Technology", "Gadgets, phones, computers, software, apps and AI.",
             _kw(en="tech, technology, smartphone*, iphone*, android, laptop*, computer*, "
                    "software, app, apps, gadget*, coding, programming, developer*, "
                    "artificial intelligence, =AI, machine learning, robot*, cybersecurity, wifi, "
                    "5g, silicon valley",
                 fr="technologie*, tech, smartphone*, portable, ordinateur*, logiciel*, appli*, "
                    "application*, intelligence artificielle, =IA, developpeur*, programmation, "
                    "numerique, robot*, informatique",
                 es="tecnologia*, movil, moviles, celular*, ordenador*, computador*, software, "
                    "aplicacion*, app, inteligencia artificial, =IA, programacion, "
                    "desarrollador*, robot*, informatica, digital"),
             _ex(en="The new phone has a faster chip and a better camera",
                 fr="Mise à jour du logiciel sur mon ordinateur portable",
                 es="La nueva aplicación usa inteligencia artificial")),
    Interest("gaming", "Video games", "Video games, consoles, esports and streaming play.",
             _kw(en="gaming, gamer*, video game*, videogame*, playstation, ps5, xbox, nintendo, "
                    "switch 2, esports, twitch, minecraft, fortnite, zelda, pokemon, console*, "
                    "speedrun*",
                 fr="jeu video, jeux video, jeux videos, gamer*, console*, playstation, xbox, "
                    "nintendo, esport*, twitch, manette",
                 es="videojuego*, gamer*, consola*, playstation, xbox, nintendo, esports, "
                    "twitch, jugando online"),
             _ex(en="Stayed up all night playing the new Zelda game",
                 fr="Nouveau jeu vidéo sur la console, trop bien",
                 es="Jugando a la nueva consola con mis amigos")),
    Interest("music", "Music", "Songs, albums, concerts, festivals, bands and instruments.",
             _kw(en="music, musician*, song*, album*, concert*, gig, gigs, festival*, band, "
                    "playlist*, spotify, guitar*, piano, singer*, rapper*, tour dates, vinyl, dj, "
                    "coldplay",
                 fr="musique*, musicien*, chanson*, album*, concert*, festival*, groupe de rock, "
                    "playlist*, guitare*, piano, chanteu*, rappeu*, fete de la musique",
                 es="musica*, musico*, cancion*, album*, concierto*, festival*, banda, "
                    "playlist*, guitarra*, piano, cantante*, rapero*, gira"),
             _ex(en="The concert last night was incredible, they played the whole album",
                 fr="Cette chanson tourne en boucle dans ma playlist",
                 es="Entradas para el concierto del sábado compradas")),
    Interest("movies_tv", "Movies & TV", "Films, cinema, TV series, streaming shows and actors.",
             _kw(en="movie*, film*, cinema, netflix, hbo, disney, series, tv show*, episode*, "
                    "season finale, trailer*, actor*, actress*, oscar*, marvel, star wars, "
                    "box office, binge watch*, doctor who",
                 fr="film*, cinema, serie*, netflix, episode*, nouvelle saison, bande annonce, "
                    "acteur*, actrice*, festival de cannes, tele, television",
                 es="pelicula*, cine, serie*, netflix, episodio*, temporada, trailer, actor*, "
                    "actriz, oscar*, television, tele"),
             _ex(en="Binge watched the whole new season in one weekend",
                 fr="Ce film au cinéma était génial, les acteurs sont parfaits",
                 es="Nueva serie en Netflix, el primer episodio engancha")),
    Interest("books", "Books", "Reading, novels, authors, libraries and book clubs.",
             _kw(en="book, books, bookworm, novel, novels, reading, author, authors, library, "
                    "libraries, bookshop*, bookstore*, book club, kindle, paperback, fiction, "
                    "poetry, bestseller*",
                 fr="livre*, roman, romans, lecture, lire, auteur*, bibliotheque*, librairie*, "
                    "club de lecture, poesie, bd, bande dessinee, polar*",
                 es="libro*, novela*, lectura, leer, leyendo, autor, autora, autores, "
                    "biblioteca*, libreria*, club de lectura, poesia, feria del libro"),
             _ex(en="Just finished a great mystery novel, couldn't put the book down",
                 fr="Je lis un roman policier passionnant",
                 es="Leyendo una novela de misterio antes de dormir")),
    Interest("fashion", "Fashion", "Clothing, style, shoes, outfits and fashion brands.",
             _kw(en="fashion, outfit*, ootd, style, dress, dresses, shoes, sneaker*, jacket*, "
                    "clothing, clothes, wardrobe, designer, runway, streetwear, handbag*",
                 fr="tenue*, robe*, chaussure*, basket*, veste*, vetement*, garde robe, defile*, "
                    "styliste*, sac a main, la mode, semaine de la mode, nouveau look",
                 es="moda, outfit*, nuevo look, vestido*, zapato*, zapatilla*, chaqueta*, ropa, "
                    "estilo, pasarela*, disenador*, bolso*"),
             _ex(en="Loving this new jacket, perfect outfit for autumn",
                 fr="Nouvelle robe pour le défilé de mode",
                 es="Me compré unas zapatillas nuevas, qué estilo")),
    Interest("beauty", "Beauty", "Makeup, skincare, haircare, cosmetics and perfume.",
             _kw(en="makeup, make up, skincare, skin care, cosmetic*, lipstick*, mascara, "
                    "perfume*, fragrance*, haircut, hairstyle*, nails, nail art, nail polish, "
                    "manicure, sunscreen, beauty, serum",
                 fr="maquillage, soin* de la peau, cosmetique*, rouge a levre*, mascara, parfum*, "
                    "coiffure*, coupe de cheveux, ongle*, manucure, beaute, creme solaire",
                 es="maquillaje, cuidado de la piel, cosmetic*, pintalabios, rimel, perfume*, "
                    "peinado*, corte de pelo, unas de gel, manicura, belleza, protector solar"),
             _ex(en="My skincare routine: cleanser, serum and sunscreen",
                 fr="Nouveau rouge à lèvres et un parfum d'été",
                 es="Tutorial de maquillaje para una fiesta")),
    Interest("fitness", "Fitness", "Exercise and training: running, gym, yoga, cycling, workouts "
             "(exercise as a hobby, never health conditions).",
             _kw(en="fitness, workout*, gym, running, morning run, went for a run, long run, "
                    "run club, runner*, marathon*, half marathon, 5k, 10k, jogging, yoga, "
                    "pilates, crossfit, squat*, deadlift*, personal best, training session, hiit, "
                    "spin class, triathlon*, strava",
                 fr="fitness, entrainement*, salle de sport, muscu*, course a pied, courir, "
                    "couru, marathon*, semi marathon, jogging, yoga, pilates, crossfit, "
                    "seance de sport, footing, triathlon*",
                 es="fitness, entrenamiento*, entrenar, gimnasio, gym, correr, corri, corredor*, "
                    "maraton*, media maraton, yoga, pilates, crossfit, running, triatlon*"),
             _ex(en="Morning run done, 10k in under fifty minutes",
                 fr="Séance de muscu à la salle de sport ce matin",
                 es="Entrenamiento de crossfit muy intenso hoy")),
    Interest("outdoors", "Outdoors", "Hiking, camping, mountains, nature, climbing and skiing.",
             _kw(en="hiking, hike, hikes, hiked, camping, campsite*, trail, trails, mountain*, "
                    "nature, national park*, climbing, ski, skiing, snowboard*, kayak*, surf, "
                    "surfing, surfer*, fishing, wilderness",
                 fr="randonnee*, rando, camping, sentier*, montagne*, nature, parc national, "
                    "escalade, ski, snowboard, kayak, surf, peche, bivouac",
                 es="senderismo, excursion*, acampada, camping, sendero*, montana*, naturaleza, "
                    "parque nacional, escalada, esqui, snowboard, kayak, surf, pesca"),
             _ex(en="Hiking to the summit at sunrise, the mountain views were unreal",
                 fr="Randonnée dans les Alpes ce week-end, nuit en bivouac",
                 es="Ruta de senderismo por la montaña con amigos"),
             exclude=("price hike", "rate hike", "tax hike")),
    Interest("pets", "Pets", "Dogs, cats and other pets, their care and adoption.",
             _kw(en="pet, pets, dog, dogs, puppy, puppies, cat, cats, kitten*, vet, adopt a pet, "
                    "rescue dog, doggo, pupper, hamster*, parrot*, aquarium",
                 fr="animal de compagnie, animaux de compagnie, chien*, chiot*, mon chat, "
                    "le chat, chaton*, veterinaire*, toutou, hamster*",
                 es="mascota*, perro*, perrito*, cachorro*, gato*, gatito*, veterinari*, hamster*"),
             _ex(en="Our puppy learned to sit today, such a good dog",
                 fr="Mon chat dort toute la journée sur le canapé",
                 es="Adoptamos un perrito del refugio")),
    Interest("home_garden", "Home & garden", "Home decor, DIY, furniture, gardening and plants.",
             _kw(en="home decor, interior design, diy, furniture, renovation*, garden*, "
                    "gardening, plant*, houseplant*, backyard, vegetable patch, ikea, "
                    "kitchen remodel",
                 fr="deco, decoration*, bricolage, meuble*, renovation*, jardin*, jardinage, "
                    "plante*, potager, balcon fleuri, ikea",
                 es="decoracion, bricolaje, mueble*, reforma*, jardin*, jardineria, planta*, "
                    "huerto*, balcon, ikea"),
             _ex(en="Planting tomatoes and herbs in the backyard garden",
                 fr="Week-end bricolage : on repeint le salon",
                 es="Mis plantas del balcón están creciendo mucho")),
    Interest("autos", "Cars & vehicles", "Cars, motorbikes, electric vehicles and driving.",
             _kw(en="car, cars, electric car*, electric vehicle*, ev, tesla, motorbike*, "
                    "motorcycle*, suv, test drive, horsepower, toyota, bmw, volkswagen",
                 fr="voiture*, auto, automobile*, voiture electrique, moto, motos, tesla, "
                    "permis de conduire, moteur, renault, peugeot",
                 es="coche*, carro*, auto, autos, automovil*, coche electrico, moto, motos, "
                    "tesla, carnet de conducir, motor, =SEAT"),
             _ex(en="Test drove the new electric car, smooth and quiet",
                 fr="Nouvelle voiture électrique, l'autonomie est top",
                 es="Me compré un coche eléctrico nuevo")),
    Interest("finance", "Finance & investing", "Personal finance, saving, investing, stocks, "
             "markets and crypto.",
             _kw(en="stock, stocks, stock market, investing, investment*, investor*, portfolio, "
                    "dividend*, savings, mortgage, crypto*, bitcoin, ethereum, nasdaq, "
                    "wall street, personal finance, budget*, etf*, interest rate*",
                 fr="bourse, actions en bourse, investir, investissement*, investisseur*, "
                    "epargne, placement*, dividende*, credit immobilier, crypto*, bitcoin, "
                    "cac 40, finance*, taux d interet",
                 es="bolsa, acciones, invers*, ahorro*, hipoteca*, dividendo*, cripto*, bitcoin, "
                    "ibex, finanzas, presupuesto*, tipos de interes"),
             _ex(en="Stock market hit a record high, my index fund is up",
                 fr="La bourse de Paris en hausse, bon moment pour investir",
                 es="La bolsa cae un dos por ciento hoy")),
    Interest("business", "Business", "Companies, startups, entrepreneurship, jobs and careers.",
             _kw(en="business*, startup*, entrepreneur*, ceo, founder*, company, companies, "
                    "marketing, sales, small business, funding round, seed round, career*, "
                    "job offer, hiring, linkedin, b2b",
                 fr="entreprise*, start up, startup*, entrepreneur*, pdg, fondateur*, marketing, "
                    "ventes, pme, levee de fonds, carriere*, offre d emploi, recrut*",
                 es="empresa*, negocio*, startup*, emprendedor*, emprendimiento, fundador*, "
                    "marketing, ventas, pyme*, ronda de inversion, carrera profesional, "
                    "oferta de empleo"),
             _ex(en="Our startup just closed its seed round, hiring engineers",
                 fr="Mon entreprise lance un nouveau produit",
                 es="Mi startup consiguió inversión para crecer")),
    Interest("education", "Education", "Schools, universities, studying, exams and learning.",
             _kw(en="school, schools, university, universities, college, student*, teacher*, "
                    "exam, exams, homework, graduation, graduated, bachelor s degree, "
                    "online course, learning, tutor*, scholarship*, campus",
                 fr="ecole*, universite*, fac, etudiant*, professeur*, prof, examen*, bac, "
                    "devoirs, diplome*, cours, formation*, rentree scolaire, lycee, college",
                 es="escuela*, colegio*, universidad*, estudiante*, profesor*, examen*, deberes, "
                    "graduacion, curso online, cursos, aprendizaje, beca*, instituto"),
             _ex(en="Finals week at university, studying for three exams",
                 fr="Rentrée scolaire lundi, les cartables sont prêts",
                 es="Aprobé el examen de la universidad")),
    Interest("parenting", "Parenting & family", "Children, family life, parenting and kids' "
             "activities (not pregnancy, which is health data).",
             _kw(en="parenting, parent*, mom life, dad life, my kids, the kids, toddler*, kid, "
                    "kids, children, baby, babies, daycare, family, families, homeschool*, "
                    "bedtime story",
                 fr="parentalite, parent*, mes enfants, les enfants, enfant*, bebe*, creche, "
                    "famille*, maman*, papa*",
                 es="crianza, padres, madre*, mis hijos, los ninos, nino*, nina*, bebe*, "
                    "guarderia, familia*, mama*, papa*"),
             _ex(en="The kids built a blanket fort, family movie night",
                 fr="Sortie au parc avec les enfants ce dimanche",
                 es="Los niños vuelven al colegio, mochilas listas")),
    Interest("weather_science", "Weather & science", "Weather, climate, space, nature science and "
             "discoveries.",
             _kw(en="weather, forecast*, rain, storm*, heatwave, snow, temperature*, climate, "
                    "science, scientist*, research, space, nasa, astronomy, eclipse, planet*, "
                    "physics, biology, discovery",
                 fr="meteo, prevision*, pluie, orage*, canicule, neige, temperature*, climat, "
                    "science*, scientifique*, recherche, espace, astronomie, eclipse, planete*",
                 es="pronostico*, pronostico del tiempo, lluvia*, tormenta*, ola de calor, "
                    "nieve, temperatura*, clima, ciencia*, cientific*, investigacion, espacio, "
                    "astronomia, eclipse, planeta*"),
             _ex(en="Heavy rain and storms in the forecast for tomorrow",
                 fr="Orage prévu cet après-midi, la météo annonce de la grêle",
                 es="Eclipse de luna esta noche, gran noche para la astronomía")),
    Interest("art_photography", "Art & photography", "Painting, museums, exhibitions, design and "
             "photography.",
             _kw(en="art, artist*, painting*, museum*, exhibition*, gallery, galleries, "
                    "photography, photographer*, photo*, camera, drawing, sketch*, sculpture*, "
                    "illustration*, architecture",
                 fr="art, artiste*, peinture*, musee*, exposition*, galerie*, photographie, "
                    "photographe*, photo*, appareil photo, dessin*, sculpture*, architecture",
                 es="arte, artista*, pintura*, museo*, exposicion*, galeria*, fotografia*, "
                    "fotografo*, foto*, camara, dibujo*, escultura*, arquitectura"),
             _ex(en="Sunset photography at the beach with my new camera",
                 fr="Exposition de peinture au musée, magnifique",
                 es="Exposición de arte moderno en el museo")),
    Interest("local_events", "Local events", "Markets, fairs, street festivals, city events and "
             "things to do nearby.",
             _kw(en="farmers market, street fair, county fair, book fair, festival, parade, "
                    "fireworks, this weekend, downtown, city center, open day, meetup*, "
                    "christmas market, food truck*, block party",
                 fr="marche de noel, marche du dimanche, marche local, marche nocturne, "
                    "brocante*, fete de quartier, feu d artifice, festival, salon, ce week end, "
                    "centre ville, portes ouvertes",
                 es="mercadillo*, mercado, feria*, fiestas del barrio, fuegos artificiales, "
                    "festival, este fin de semana, centro de la ciudad, "
                    "jornada de puertas abiertas"),
             _ex(en="Farmers market opens downtown this Sunday, come say hi",
                 fr="Brocante géante dans le centre-ville ce week-end",
                 es="Feria del barrio este fin de semana con música")),
    Interest("volunteering", "Volunteering & charity", "Volunteering, charities, donations and "
             "community help.",
             _kw(en="volunteer*, charity, charities, donate*, donation*, fundraiser*, "
                    "fundraising, food bank, nonprofit*, non profit, community service, "
                    "blood drive",
                 fr="benevol*, association caritative, association*, faire un don, dons, "
                    "collecte*, banque alimentaire, restos du coeur, solidarite",
                 es="voluntari*, caridad, ong, donacion*, donar, donativo*, recaudacion, "
                    "banco de alimentos, comedor social, solidari*"),
             _ex(en="Volunteering at the food bank this Saturday, join us",
                 fr="Bénévole à la banque alimentaire samedi matin",
                 es="Voluntariado en el comedor social del barrio")),
    Interest("shopping", "Shopping & deals", "Shopping, sales, deals, discounts and online orders.",
             _kw(en="shopping, shop, on sale, for sale, flash sale, deals, good deal, great deal, "
                    "discount*, black friday, cyber monday, coupon*, amazon, order arrived, haul",
                 fr="shopping, soldes, promo, promos, code promo, bons de reduction, bon plan*, "
                    "black friday, achats, commande*",
                 es="compras, de compras, rebajas, oferta*, descuento*, black friday, pedido*, "
                    "cupon*"),
             _ex(en="Black Friday deals are insane this year, got new headphones",
                 fr="Les soldes commencent demain, bons plans partout",
                 es="Rebajas de enero, me compré dos camisas")),
)

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
SENSITIVE: dict[str, Interest] = _table(
    Interest("health", "Health", "Health conditions, illnesses, diseases, disabilities, medical "
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
    Interest("religion", "Religion & beliefs", "Religious faith and practice, churches, mosques, "
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
    Interest("politics", "Political opinions", "Political opinions and affiliations: parties, "
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
    Interest("sexual_orientation", "Sexual orientation & sex life", "Sexual orientation, LGBTQ+ "
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
    Interest("ethnicity", "Racial or ethnic origin", "Racial or ethnic origin and heritage, "
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
    Interest("trade_union", "Trade union membership", "Trade union membership and activity: "
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

if set(INTERESTS) & set(SENSITIVE):   # pragma: no cover - a table edit gone wrong
    raise ValueError(f"ids in both tables: {sorted(set(INTERESTS) & set(SENSITIVE))}")
