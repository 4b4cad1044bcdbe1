"""Shop words of six other languages (French, German, Spanish, Italian, Dutch, Portuguese).

The multilingual encoder places a lone foreign word by its nearest English phrase, and for
near classes the margin is thin ("Hemd" came out nearer to a T-shirt than to a shirt). The
words shops use for the ten classes and the attribute values are few, so they are listed here,
accents folded (:func:`fold`), for the multilingual reader to look up (exactly, or within its
typo cutoff: "schwarze" is "schwarz") before it asks the encoder. They are read only in a
message that does not read as English, where "robe", "large" or "vest" mean what they mean here.
Written from the languages, not from the held-out queries.
"""

from __future__ import annotations

import unicodedata


def fold(word: str) -> str:
    """``word`` lower-cased without accents ("Weiß" → "weiss", "tênis" → "tenis")."""
    decomposed = unicodedata.normalize("NFKD", word.lower().replace("ß", "ss"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _words(slot: str, value: int, text: str) -> dict[str, tuple[str, int]]:
    return {fold(word): (slot, value) for word in text.split()}


# fmt: off
#: Folded word → (slot, value), per class and attribute value; every language's words together.
FOREIGN_SHOP_WORDS: dict[str, tuple[str, int]] = {
    **_words("class", 0, "tshirt teeshirt débardeur haut oberteil camiseta playera maglietta "
                         "canottiera topje shirtje regata"),
    **_words("class", 1, "pantalon pantalons jean hose hosen jeans pantalón pantalones vaqueros "
                         "tejanos pantaloni broek spijkerbroek calça calças"),
    **_words("class", 2, "pull pullover chandail sweat pulli strickpullover jersey suéter "
                         "sudadera maglione felpa trui sweater moletom"),
    **_words("class", 3, "robe kleid vestido vestito abito jurk jurkje"),
    **_words("class", 4, "manteau veste blouson doudoune imperméable mantel jacke regenjacke "
                         "winterjacke abrigo chaqueta cazadora chamarra cappotto giacca giubbotto "
                         "piumino jas regenjas winterjas casaco jaqueta"),
    **_words("class", 5, "sandale sandales tongs sandalen sandalia sandalias chanclas sandalo "
                         "sandali infradito sandaal sandália sandálias chinelos"),
    **_words("class", 6, "chemise chemisier hemd bluse camisa blusa camicia camicetta overhemd "
                         "bloes"),
    **_words("class", 7, "baskets basket turnschuhe turnschuh sportschuhe laufschuhe zapatillas "
                         "deportivas tenis ginnastica sportschoenen gympen tênis sapatilhas"),
    **_words("class", 8, "sac sacoche tasche handtasche rucksack bolso bolsa mochila borsa "
                         "borsetta zaino tas handtas rugzak"),
    **_words("class", 9, "bottine bottines bottes stiefel stiefeletten botines botas botín "
                         "stivaletti stivali stivaletto laarzen laarsjes enkellaarsjes botins "
                         "botinhas"),
    **_words("tone", 0, "noir noire noirs noires foncé foncée sombre schwarz dunkel negro negra "
                        "negros negras oscuro oscura nero nera neri nere scuro scura zwart "
                        "donker preto preta pretos pretas escuro escura"),
    **_words("tone", 1, "gris grau grigio grijs cinza cinzento"),
    **_words("tone", 2, "blanc blanche blancs blanches clair claire weiss hell blanco blanca "
                        "blancos blancas claro clara bianco bianca bianchi bianche chiaro "
                        "chiara wit witte licht lichte branco branca brancos brancas"),
    **_words("fit", 0, "serré serrée moulant moulante étroit étroite eng enge schmal ajustado "
                       "ajustada estrecho estrecha ceñido ceñida stretto stretta aderente "
                       "attillato attillata strak strakke nauw smal justo justa apertado "
                       "apertada"),
    **_words("fit", 2, "large larges ample weit weite locker ancho ancha anchos anchas holgado "
                       "holgada largo larga ampio ampia wijd wijde ruim ruime folgado folgada"),
    **_words("pattern", 0, "uni unie einfarbig liso lisa effen"),
    **_words("pattern", 1, "rayé rayée rayures motif motifs fleurs fleuri fleurie imprimé imprimée carreaux "
                           "muster aufdruck streifen strepen listras estampa "
                           "gestreift geblümt gemustert kariert estampado estampada rayas "
                           "flores cuadros righe fiori fantasia stampato stampata quadri "
                           "gestreept gebloemd bedrukt geruit listrado listrada florido "
                           "florida xadrez"),
}
#: Articles, prepositions and conjunctions: read as nothing, and not reported as unread. Their
#: negations ("sans", "ohne", "sin") are not among them: a negated foreign word stays unread
#: rather than be read as asked for.
_STOPWORDS = """
    le la les un une des de du d l à au aux en et pour avec
    der die das den dem des ein eine einen einem einer für mit und im in aus
    el los las una unos unas del con para y por
    il lo gli i uno di da dei delle della con per e
    het een met voor en
    o os as um uma umas do da dos das com para em
"""
FOREIGN_STOPWORDS: frozenset[str] = frozenset(map(fold, _STOPWORDS.split()))
#: Words that negate the shop word after them ("sans rayures", "ohne Muster", "no negro").
_NEGATIONS = "sans pas ni ohne kein keine keinen keiner nicht sin no senza non zonder geen niet sem não"
NEGATION_WORDS: tuple[str, ...] = tuple(_NEGATIONS.split())  # as typed: "não"
FOREIGN_NEGATIONS: frozenset[str] = frozenset(map(fold, NEGATION_WORDS))
#: Forms of "to be" between a negation and what it negates ("que no sean negras").
_COPULAS = "soit soient sont est ist sind sea sean sia siano seja sejam zijn"
FOREIGN_COPULAS: frozenset[str] = frozenset(map(fold, _COPULAS.split()))
# fmt: on
