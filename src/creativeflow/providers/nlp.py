"""Classic NLP on plain text, in pure Python: sentences, tokens, stop words, keywords (term
frequency with a position boost) and RAKE-like key phrases, extractive summaries, character
names and a lexicon mood. The local text provider builds its answers from these; nothing is
downloaded and nothing here is random.

Text in scripts without letter case or spaces between words of one phrase (Korean, Chinese)
is treated as words too: Hangul words lose a trailing particle (`민수는` -> `민수`), so the same
name or noun is counted once.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

WORD_RE = re.compile(r"[^\W_]+(?:['\u2019\-][^\W_]+)*")
# Words and single punctuation marks: the unit of the local provider's token counts.
TOKEN_RE = re.compile(r"[^\W_]+|[^\w\s]")
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”\u2019»)\]]*(?=\s|$)|[。\uff01\uff1f]+[」』\"'”\u2019)]*")
_CLAUSE_BREAK = re.compile(r"\s*[,;:—\u2013]\s*|\s+-\s+|[\"“”()]")


def word_set(text: str) -> frozenset[str]:
    """A set of the whitespace-separated words of `text` (word lists stay readable)."""
    return frozenset(text.split())


_HANGUL = re.compile(r"^[\uac00-\ud7a3]+$")
# Longest first, so `에서는` goes before `는`. `이` and `도` are left alone: too many nouns end
# so. Particles that end few nouns may leave a one-syllable noun (`밤에` -> `밤`).
_KOREAN_PARTICLES = (
    "에서는", "에게서", "으로는", "에서", "에게", "으로", "까지", "부터", "처럼", "보다",
    "은", "는", "가", "을", "를", "의", "에", "와", "과", "로",
)  # fmt: skip
_SHORT_STEM_PARTICLES = frozenset(
    {"에서는", "에게서", "으로는", "에서", "에게", "으로", "를", "에"}
)
# Predicate endings (`달려갔다`, `있었다`, `불렀지만`): verbs, not keywords.
_KOREAN_VERB_ENDINGS = (
    "었다", "았다", "였다", "했다", "갔다", "왔다", "졌다", "났다", "렀다", "된다", "한다", "는다",
    "있다", "없다", "지만", "습니다", "니다", "않았다", "고 있다",
)  # fmt: skip

STOP_WORDS = word_set(
    """a about above after again against all almost also although always am among an and
    another any anyone anything are around as at away back be became because become been
    before being below beside between both but by can cannot could did do does doing done
    down during each either else enough even ever every everything few for from further get
    gets got had has have having he her here hers herself him himself his how however i if
    in into is it its itself just least less like made make many may me might mine more most
    much must my myself near neither never no nor not nothing now of off often on once one
    only onto or other others our ours ourselves out over own perhaps quite rather really
    same several she should since so some someone something soon still such than that the
    their theirs them themselves then there these they thing things this those though
    through thus to too toward towards under until up upon us very was we were what whatever
    when where whether which while who whom whose why will with within without would yet you
    your yours yourself yourselves beneath past let lets said says say tell told asked went
    goes go come
    came already again around across along behind beyond inside outside s t don didn doesn
    isn wasn weren won wouldn couldn shouldn ll re ve d m o oh yes okay ok
    그리고 그러나 하지만 그래서 그런데 또한 및 등 것 수 때 그 이 저 그는 그녀 그녀는 그들은
    우리는 나는 너는 있다 없다 했다 한다 하는 있는 없는 된다 되었다 였다 이다 아니다 모든 아주
    매우 정말 다시 이미 아직 너무 조금 더 안 못 위해 대한 통해 함께"""
)
# Capitalised words that start sentences or name times, never characters.
_NOT_NAMES = word_set(
    """monday tuesday wednesday thursday friday saturday sunday january february march april
    may june july august september october november december suddenly later meanwhile finally
    outside inside tonight today tomorrow yesterday hello hey please sorry thanks chapter
    scene panel god"""
)
HONORIFICS = word_set(
    "mr mrs ms miss dr prof sir lady lord captain capt sergeant sgt lieutenant lt officer "
    "detective agent professor doctor master madam king queen prince princess"
)
PLACE_WORDS = word_set(
    """street st road avenue lane square district city town village station tower river
    harbor harbour bay market hall bridge park mountain mountains forest woods island lake sea
    ocean castle palace temple academy school university hospital cafe café bar club inn
    tavern port docks valley kingdom empire republic building plaza alley library museum
    church cathedral shrine gate wall district quarter"""
)
_DETERMINERS = word_set(
    "the a an his her their my your our its this that these those one every each some no any"
)
_VERB_BEFORE = word_set(
    "to will would can could must should might shall he she they we i you not don't didn't"
)
_OBJECTS = word_set("the a an it him her them me us his their my your our its this that")
# Before a name every time it occurs (`the port city of Saltmere`): a place, not a person.
_PLACE_PREPOSITIONS = word_set("in at of from into near across toward towards inside outside")
_ABBREVIATIONS = word_set("mr mrs ms dr prof st sr jr vs etc capt lt sgt no vol fig e.g i.e approx")

MOODS: dict[str, frozenset[str]] = {
    name: word_set(words)
    for name, words in {
        "tense": """fear afraid danger dangerous threat chase chased run ran running panic
            alarm trap trapped hide hid hiding gun knife blood escape sirens siren hunted
            tense nervous warning attack attacked footsteps hurry pursued urgent
            긴장 위험 도망 공포""",
        "mysterious": """mystery mysterious strange secret secrets hidden shadow shadows fog
            mist whisper whispered unknown stranger cloaked riddle ancient symbol symbols
            clue clues vanished silence silent 비밀 수수께끼 안개""",
        "melancholic": """sad sadness grief tears tear cried cry crying lonely alone loss lost
            mourning funeral rain grey gray empty regret farewell goodbye memory memories
            missed 슬픔 눈물 이별 외로움""",
        "joyful": """happy joy joyful laugh laughed laughing smile smiled smiling celebrate
            celebration festival bright sunshine cheer cheered delight danced dance party
            warm 기쁨 웃음 행복 축제""",
        "romantic": """love loved kiss kissed heart hearts tender embrace embraced blush
            blushed date moonlight longing beloved 사랑 고백 설렘""",
        "angry": """angry anger rage furious shout shouted yelled slam slammed hate hated
            betrayed betrayal argue argued fury 분노 화 배신""",
        "triumphant": """victory won win triumph triumphant cheering champion succeeded
            success saved rescue rescued hero 승리 성공""",
        "calm": """calm quiet peaceful gentle softly slowly serene still breeze tea garden
            rest resting 평화 고요""",
    }.items()
}

# Trait adjectives a description may state outright.
TRAITS = word_set(
    """ambitious anxious arrogant bitter bold brave brilliant calm careful charming cheerful
    clever cold compassionate confident cruel cunning curious cynical daring determined
    diligent disciplined eccentric fearless fierce gentle generous grumpy honest hopeful
    humble impulsive independent intelligent jealous kind lazy loyal meticulous mischievous
    moody mysterious naive nervous obsessive optimistic passionate patient pessimistic playful
    proud quiet reckless reserved resourceful restless ruthless sarcastic secretive selfish
    sensitive serious shy sly stoic stubborn suspicious tender tough vain warm weary wise
    witty"""
)

# Lexicons of the local provider's generators: what a description says about looks, motives
# and relations, and which words make a panel an action or an object shot.
APPEARANCE_WORDS = word_set(
    "hair eyes eye wears wearing wore tall short scar scarred coat jacket dress skin face beard "
    "glasses tattoo cloak boots uniform slender broad thin freckles braid hood armour armor "
    "머리 눈 키 옷 흉터 코트"
)
MOTIVE_CUE = re.compile(
    r"\b(wants?|wanted|seeks?|sought|needs?|hopes?|dreams? of|longs? to|swore|vowed|must|"
    r"determined to|desperate to|plans? to|tries to|to (?:protect|find|prove|avenge|save|escape))"
    r"\b|원하|지키|찾",
    re.IGNORECASE,
)
# Checked in this order: "best friend" before "friend".
RELATION_WORDS = (
    "best friend", "sister", "brother", "mother", "father", "daughter", "son", "friend",
    "rival", "enemy", "mentor", "apprentice", "partner", "ally", "boss", "lover", "wife",
    "husband", "uncle", "aunt", "cousin", "captain", "student", "teacher",
    "친구", "언니", "누나", "형", "오빠", "동생", "스승", "라이벌",
)  # fmt: skip
ACTION_WORDS = word_set(
    "ran run runs running jumped jump leapt struck strikes hit grabbed grab pushed push fell "
    "falls chased chase fought fight slammed swung dove charged burst raced threw"
)
OBJECT_WORDS = word_set(
    "held holds opened opens clutched clutches hand hands letter ledger key keys map phone "
    "lantern knife gun ring photo book note"
)


def count_tokens(text: str) -> int:
    """Tokens as the local provider counts them: words and punctuation marks."""
    return len(TOKEN_RE.findall(text))


def normalize(word: str) -> str:
    """A word's counting form: lower case, no possessive, no trailing Korean particle."""
    token = word.lower().replace("\u2019", "'")
    if token.endswith("'s"):
        token = token[:-2]
    if _HANGUL.match(token):
        for _round in range(2):  # `장부에는`: `는`, then `에`
            token = _strip_particle(token)
    return token


def _strip_particle(token: str) -> str:
    for particle in _KOREAN_PARTICLES:
        shortest = 1 if particle in _SHORT_STEM_PARTICLES else 2
        if token.endswith(particle) and len(token) - len(particle) >= shortest:
            return token[: -len(particle)]
    return token


def stem(token: str) -> str:
    """Plural and singular counted together (`shadows` with `shadow`)."""
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def is_content_word(token: str) -> bool:
    if token in STOP_WORDS or token.isdigit():
        return False
    if _HANGUL.match(token) and token.endswith(_KOREAN_VERB_ENDINGS):
        return False
    return len(token) >= 2 or not token.isascii()


def words(text: str) -> list[str]:
    """The normalised words of `text`, in order."""
    return [normalize(match) for match in WORD_RE.findall(text)]


def split_sentences(text: str) -> list[str]:
    """Sentences in order. Paragraphs (blank lines) always end one; a full stop after an
    abbreviation or an initial does not, nor does `!"` or `?"` before a lower-case word
    (`"Run!" she said.`)."""
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        flat = " ".join(paragraph.split())
        start = 0
        for match in _SENTENCE_END.finditer(flat):
            following = flat[match.end() :].lstrip()[:1]
            if following and following.islower():
                continue
            previous = flat[start : match.start()].rsplit(None, 1)
            last_word = previous[-1].lower() if previous else ""
            if match.group() == "." and (
                last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha())
            ):
                continue
            sentence = flat[start : match.end()].strip()
            if sentence:
                sentences.append(sentence)
            start = match.end()
        tail = flat[start:].strip()
        if tail:
            sentences.append(tail)
    return sentences


def clauses(sentence: str) -> list[str]:
    """A sentence cut at commas, dashes, semicolons and quotes, each part trimmed."""
    parts = (part.strip(" .!?…'\u2019") for part in _CLAUSE_BREAK.split(sentence))
    return [part for part in parts if part]


def quotes(text: str) -> list[str]:
    """Quoted speech in `text`, in order."""
    found = re.findall(r"[\"“]([^\"“”]{2,300})[\"”]|「([^」]{1,300})」", text)
    return [(straight or corner).strip() for straight, corner in found]


def shorten(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(None, 1)[0] if " " in text[: limit - 1] else text[: limit - 1]
    return cut.rstrip(" ,;:") + "…"


def sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def title_case(text: str) -> str:
    small = {"a", "an", "the", "of", "and", "or", "in", "on", "at", "to", "for"}
    parts = text.split()
    return " ".join(
        part if not part.isascii() or (index and part.lower() in small) else part.capitalize()
        for index, part in enumerate(parts)
    )


def mentions(text: str, name: str) -> int:
    """How often `name` occurs in `text` (as a whole word where the script has spaces)."""
    if name.isascii():
        return len(re.findall(rf"\b{re.escape(name)}\b", text, flags=re.IGNORECASE))
    return text.count(name)


@dataclass(frozen=True, slots=True)
class Sentence:
    text: str
    index: int
    words: tuple[str, ...]

    @property
    def content(self) -> tuple[str, ...]:
        return tuple(word for word in self.words if is_content_word(word))


class TextAnalysis:
    """Everything the local provider needs to know about one text, computed once."""

    def __init__(self, text: str, known_names: Sequence[str] = ()) -> None:
        self.text = text
        self.known_names = [name for name in known_names if name.strip()]
        self.sentences = [
            Sentence(sentence, index, tuple(words(sentence)))
            for index, sentence in enumerate(split_sentences(text))
        ]

    @cached_property
    def keyword_scores(self) -> dict[str, float]:
        """Keyword -> weight 0..1: term frequency (plurals with singulars), +50 % for words of
        the first sentence, +25 % for longer words, -40 % for English words in -ed; shown in
        their most frequent spelling."""
        counts: dict[str, float] = {}
        spellings: dict[str, Counter[str]] = {}
        for sentence in self.sentences:
            for word in sentence.content:
                key = stem(word)
                weight = 1.5 if sentence.index == 0 else 1.0
                if len(word) > 4 and word.endswith("ed") and word.isascii():
                    weight *= 0.6  # most likely a verb in the past tense: a weaker keyword
                counts[key] = counts.get(key, 0.0) + weight * (1.25 if len(word) >= 6 else 1.0)
                spellings.setdefault(key, Counter())[word] += 1
        if not counts:
            return {}
        top = max(counts.values())
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return {spellings[key].most_common(1)[0][0]: score / top for key, score in ranked}

    def keywords(self, limit: int = 10, *, names: bool = True) -> list[str]:
        """The top keywords; names capitalised, or left out with `names=False`."""
        proper = self.proper_words
        chosen = [
            word.capitalize() if word in proper or word in self.capitalised_words else word
            for word in self.keyword_scores
            if names or word not in proper
        ]
        return chosen[:limit]

    def weight(self, word: str) -> float:
        scores = self.keyword_scores
        return scores.get(word, scores.get(stem(word), 0.0))

    @cached_property
    def _phrases(self) -> list[tuple[str, float]]:
        """RAKE-like candidates: runs of up to three content words between stop words and
        punctuation, scored by their words' weights and how often the phrase recurs."""
        found: Counter[str] = Counter()
        surface: dict[str, str] = {}
        for sentence in self.sentences:
            for part in clauses(sentence.text):
                for run in _content_runs(part, self.proper_words):
                    key = " ".join(normalize(word) for word in run)
                    found[key] += 1
                    surface.setdefault(key, " ".join(run))
        scored = []
        for key, count in found.items():
            parts = key.split()
            score = sum(self.weight(part) for part in parts) * (1 + 0.2 * (count - 1))
            scored.append((key, score / math.sqrt(len(parts)) * (1 + 0.15 * (len(parts) - 1))))
        scored.sort(key=lambda item: (-item[1], item[0]))
        return [(self._display(surface[key]), score) for key, score in scored]

    def _display(self, phrase: str) -> str:
        """Lower-case, except capitalised words the text never writes in lower case."""
        return " ".join(
            word if word.lower() not in self.lower_words else word.lower()
            for word in phrase.split()
        )

    def topics(self, limit: int = 8) -> list[str]:
        """Things the text is about: key phrases that are neither only names nor a lone verb,
        phrases of several words first."""
        phrases = [
            phrase
            for phrase in self.key_phrases(limit * 2, names=False)
            if " " in phrase or normalize(phrase) not in self.verbs
        ][:limit]
        return sorted(phrases, key=lambda phrase: " " not in phrase)

    @cached_property
    def verbs(self) -> frozenset[str]:
        """English words used like verbs (`to hand`, `she opened`, `throw it`) and never like
        nouns (`the hand`, `Mira's hand`): a shallow stand-in for part-of-speech tagging."""
        verb: set[str] = set()
        noun: set[str] = set()
        for sentence in self.sentences:
            tokens = [normalize(t) for t in WORD_RE.findall(sentence.text)]
            raw = WORD_RE.findall(sentence.text)
            for i, token in enumerate(tokens):
                before = tokens[i - 1] if i else ""
                after = tokens[i + 1] if i + 1 < len(tokens) else ""
                if before in _DETERMINERS or (i and raw[i - 1].lower().endswith(("'s", "\u2019s"))):
                    noun.add(token)
                elif before in _VERB_BEFORE or after in _OBJECTS or before in self.proper_words:
                    verb.add(token)
        return frozenset(verb - noun)

    def key_phrases(self, limit: int = 10, *, names: bool = True) -> list[str]:
        """The best phrases, none a repeat of the words of a better one; `names=False` leaves
        out phrases that are only a name."""
        chosen: list[str] = []
        seen: list[set[str]] = []
        for phrase, _score in self._phrases:
            parts = {stem(normalize(word)) for word in phrase.split()}
            if not names and all(normalize(word) in self.proper_words for word in phrase.split()):
                continue
            if any(parts <= earlier for earlier in seen):
                continue
            chosen.append(phrase)
            seen.append(parts)
            if len(chosen) == limit:
                break
        return chosen

    def sentence_score(self, sentence: Sentence) -> float:
        content = set(sentence.content)
        if not content:
            return 0.0
        score = sum(self.weight(word) for word in content) / math.sqrt(len(content))
        if sentence.index == 0:
            score *= 1.2
        if len(sentence.words) < 4:
            score *= 0.4  # a label or a fragment rather than a sentence
        return score

    def ranked_sentences(self) -> list[Sentence]:
        return sorted(self.sentences, key=lambda s: (-self.sentence_score(s), s.index))

    def summary(self, max_sentences: int) -> list[str]:
        """Extractive summary: the best sentences, in their original order."""
        best = sorted(self.ranked_sentences()[:max_sentences], key=lambda s: s.index)
        return [sentence.text for sentence in best]

    def best_clause(self, sentence: Sentence) -> str:
        """The part of a sentence carrying most of its keywords."""
        parts = [part for part in clauses(sentence.text) if len(WORD_RE.findall(part)) >= 2]
        if not parts:
            return sentence.text.strip(" .!?")
        scored = [(sum(self.weight(normalize(w)) for w in WORD_RE.findall(p)), p) for p in parts]
        return max(scored, key=lambda item: item[0])[1]

    @cached_property
    def lower_words(self) -> frozenset[str]:
        """Words the text writes in lower case somewhere: not names."""
        return frozenset(
            word for s in self.sentences for word in WORD_RE.findall(s.text) if word.islower()
        )

    @cached_property
    def capitalised_words(self) -> frozenset[str]:
        """Words (normalised) the text only ever writes capitalised."""
        capitalised = {normalize(w) for s in self.sentences for w in WORD_RE.findall(s.text)}
        return frozenset(capitalised - {normalize(w) for w in self.lower_words})

    @cached_property
    def proper_words(self) -> frozenset[str]:
        """Words written capitalised where no sentence starts, and never in lower case."""
        proper = {
            normalize(match.group())
            for sentence in self.sentences
            for match in WORD_RE.finditer(sentence.text)
            if _capitalised(match.group()) and not _starts_sentence(sentence.text, match.start())
        }
        known = {normalize(part) for name in self.known_names for part in WORD_RE.findall(name)}
        return frozenset((proper - self.lower_words) | known)

    @cached_property
    def _name_counts(self) -> tuple[Counter[str], Counter[str]]:
        """Capitalised runs (`Mira Vale`, `Jun`) -> occurrences, for persons and places."""
        seen: Counter[str] = Counter()
        inside: Counter[str] = Counter()
        located: Counter[str] = Counter()
        for sentence in self.sentences:
            for run, start in _capitalised_runs(sentence.text):
                name = " ".join(run)
                seen[name] += 1
                if not _starts_sentence(sentence.text, start):
                    inside[name] += 1
                before = sentence.text[:start].split()
                if before and before[-1].lower() in _PLACE_PREPOSITIONS:
                    located[name] += 1
        persons: Counter[str] = Counter()
        places: Counter[str] = Counter()
        for name, count in seen.items():
            key = name.lower()
            if key in self.lower_words or key in _NOT_NAMES or key.endswith("ly"):
                continue
            if not inside[name] and count < 2:
                continue
            place = key.split()[-1] in PLACE_WORDS or located[name] == count
            target = places if place else persons
            target[name] = count
        return persons, places

    def character_names(self) -> list[str]:
        """Characters by how often they appear: the known names present in the text, then
        names found in it. A single word that is part of a longer name counts for it."""
        persons, _places = self._name_counts
        counts: Counter[str] = Counter(
            {name: mentions(self.text, name) for name in self.known_names}
        )
        counts = +counts
        known = {name.lower() for name in self.known_names}
        longer = sorted(persons, key=lambda name: (-len(name.split()), -persons[name], name))
        for name in longer:
            if name.lower() in known:
                continue  # already counted by its mentions
            parts = set(name.lower().split())
            owner = next((other for other in counts if parts & set(other.lower().split())), None)
            if owner is None:
                counts[name] = persons[name]
            elif owner.lower() in known or len(name.split()) <= len(owner.split()):
                counts[owner] += persons[name]
            else:
                counts[name] = counts.pop(owner) + persons[name]
        order = {name: self.text.lower().find(name.lower()) for name in counts}
        return sorted(counts, key=lambda name: (-counts[name], order[name], name))

    def places(self) -> list[str]:
        _persons, places = self._name_counts
        return [name for name, _count in places.most_common()]

    def sentences_mentioning(self, name: str) -> list[Sentence]:
        return [s for s in self.sentences if mentions(s.text, name)]

    def mood(self) -> str:
        """The mood whose lexicon the text uses most, or `neutral`."""
        tokens = [word for s in self.sentences for word in s.words]
        hits = Counter(
            {mood: sum(1 for t in tokens if t in lexicon or stem(t) in lexicon)
             for mood, lexicon in MOODS.items()}
        )  # fmt: skip
        best = [mood for mood, count in hits.most_common() if count]
        return best[0] if best else "neutral"

    def traits(self) -> list[str]:
        """Trait adjectives the text states, most frequent first."""
        counts = Counter(word for s in self.sentences for word in s.words if word in TRAITS)
        return [word for word, _count in counts.most_common()]


def _capitalised(word: str) -> bool:
    return word[:1].isupper() and not (len(word) > 1 and word.isupper())


def _starts_sentence(text: str, position: int) -> bool:
    """Whether the word at `position` opens the sentence or a quotation (a straight quote
    opens one after a space: `said, "Look`; it closes one after a word: `Hurry," Mira`)."""
    before = text[:position].rstrip()
    if not before or before[-1] in "“\u2018(「:":
        return True
    if before[-1] in "\"'":
        return len(before) == 1 or before[-2].isspace()
    return False


def _content_runs(part: str, names: frozenset[str]) -> Iterable[list[str]]:
    """Runs of up to three content words in a clause, as written; a name is a run of its own
    (`Mira Vale`), so `Mira opened` is not a phrase."""
    run: list[str] = []
    for raw in WORD_RE.findall(part):
        token = normalize(raw)
        if run and (token in names) != (normalize(run[-1]) in names):
            yield run
            run = []
        if not is_content_word(token):
            if run:
                yield run
            run = []
            continue
        run.append(raw)
        if len(run) == 3:
            yield run
            run = []
    if run:
        yield run


def _capitalised_runs(text: str) -> Iterable[tuple[list[str], int]]:
    """Runs of up to three adjacent capitalised words (honorifics and stop words dropped)."""
    run: list[str] = []
    start = 0
    last_end = -1
    for match in WORD_RE.finditer(text):
        word = match.group()
        bare = re.sub(r"['\u2019]s$", "", word)
        adjacent = text[last_end : match.start()].isspace() if last_end >= 0 else False
        keep = _capitalised(word) and bare.lower() not in STOP_WORDS | HONORIFICS
        if run and (not keep or not adjacent or len(run) == 3):
            yield run, start
            run = []
        if keep:
            if not run:
                start = match.start()
            run.append(bare)
        last_end = match.end()
        if word != bare and run:  # a possessive ends the name: "Mira's coat"
            yield run, start
            run = []
    if run:
        yield run, start
