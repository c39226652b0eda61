"""The command vocabulary in the recognisers' own formats: a word graph for PocketSphinx, a phrase list for Vosk.

PocketSphinx decodes against the word graph (a finite-state grammar, what a JSGF grammar compiles to) exactly, so it
can only ever hear a phrase of the vocabulary, or, when rejection words are on, a run of ordinary words that is then
dropped. We build the graph directly rather than writing JSGF because PocketSphinx copies a JSGF rule at every place
it is used: the number rules alone came to 25,000 states and decoding was 40x slower; built here the minimal automaton
of the numbers a slot allows is copied once per group of units, and the whole grammar is a few hundred states.
(PocketSphinx no longer uses the rejection words: they stole too many commands in noise; see
voice.pocketsphinx_engine for how speech that is no command is caught.)

Vosk turns its phrase list into a word bigram model, so it *can* string words in an order no phrase has;
:meth:`edgepilot.voice.vocabulary.Vocabulary.read` rejects those.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from edgepilot.voice.numbers import Phrase
from edgepilot.voice.vocabulary import Literal, Vocabulary, WordSlot

# A state of the number automaton: (is_final, ((word, next_state), ...)).
_State = tuple[bool, tuple[tuple[str, int], ...]]


def _minimal_automaton(phrases: Iterable[Phrase]) -> tuple[int, list[_State]]:
    """Build the minimal acyclic automaton (a DAWG) of ``phrases``; return (start state, states)."""
    trie: dict = {}
    for phrase in phrases:
        node = trie
        for word in phrase:
            node = node.setdefault(word, {})
        node[None] = {}  # end of a phrase
    states: list[_State] = []
    index: dict[_State, int] = {}

    def visit(node: dict) -> int:
        arcs = tuple(sorted((word, visit(child)) for word, child in node.items() if word is not None))
        state: _State = (None in node, arcs)
        if state not in index:
            index[state] = len(states)
            states.append(state)
        return index[state]

    return visit(trie), states


class WordGraph:
    """A finite-state grammar over words: arcs (from, to, word or None for an empty move). State 0 starts, 1 ends."""

    START, FINAL = 0, 1

    def __init__(self) -> None:
        self.arcs: list[tuple[int, int, str | None]] = []
        self.num_states = 2

    def new_state(self) -> int:
        self.num_states += 1
        return self.num_states - 1

    def chain(self, src: int, words: Phrase, dst: int) -> None:
        """Arcs src -w1-> . -w2-> ... -> dst (an empty move for no words)."""
        if not words:
            self.arcs.append((src, dst, None))
            return
        for word in words[:-1]:
            nxt = self.new_state()
            self.arcs.append((src, nxt, word))
            src = nxt
        self.arcs.append((src, dst, words[-1]))

    def accepts(self, words: Phrase) -> bool:
        """Whether ``words`` is a whole path from START to FINAL (PocketSphinx returns the best partial path when no
        path reaches the end)."""

        def closure(states: set[int]) -> set[int]:
            todo, seen = list(states), set(states)
            while todo:
                state = todo.pop()
                for src, dst, word in self.arcs:
                    if src == state and word is None and dst not in seen:
                        seen.add(dst)
                        todo.append(dst)
            return seen

        states = closure({self.START})
        for word in words:
            states = closure({dst for src, dst, w in self.arcs if src in states and w == word})
            if not states:
                return False
        return self.FINAL in states

    def transitions(self, weights: dict[int, float] | None = None) -> list[tuple]:
        """(from, to, probability, word), or (from, to, probability) for an empty move, as PocketSphinx's
        ``create_fsg`` takes them; each state's outgoing probability is shared equally, or by ``weights`` (arc index
        -> weight, default 1)."""
        out_weight: dict[int, float] = {}
        weights = weights or {}
        for i, (src, _, _) in enumerate(self.arcs):
            out_weight[src] = out_weight.get(src, 0.0) + weights.get(i, 1.0)
        return [(src, dst, weights.get(i, 1.0) / out_weight[src], word)[: 3 if word is None else 4]
                for i, (src, dst, word) in enumerate(self.arcs)]


def word_graph(vocab: Vocabulary, rejection_weight: float | None = None,
               out_of_grammar: bool = False) -> tuple[WordGraph, dict[int, float]]:
    """Every command phrase as one word graph; at each number slot, the minimal automaton of the numbers that slot
    allows is copied in once per group of units (centimeters and meters allow different numbers).

    With ``out_of_grammar`` the graph also holds what users say that is no valid command, so that the decoder can
    land there instead of on the nearest command (the listener then says why it is none, Vocabulary.why_not): the
    numbers a slot refuses (out of range, off the steps) with their units, directions no command has
    (``[out_of_grammar] directions``), phrases of two words or more cut short before a slot ("go up", "turn right"),
    a number and its unit alone ("fifty centimeters"), and filler words before a command ("okay stop").

    With ``rejection_weight`` the graph also accepts a run of the language's rejection words, entered with that
    weight (relative to 1 for each command phrase), so ordinary speech has somewhere to go other than the nearest
    command. Returns the graph and the arc weights for :meth:`WordGraph.transitions`.
    """
    graph = WordGraph()
    automata: dict[frozenset[Phrase], tuple[int, list[_State]]] = {}

    weights: dict[int, float] = {}

    def add_number(phrases: frozenset[Phrase], src: int, dst: int) -> None:
        if phrases not in automata:
            automata[phrases] = _minimal_automaton(sorted(phrases))
        number_start, number_states = automata[phrases]
        ids = {number_start: src}
        for state_id in range(len(number_states)):
            ids.setdefault(state_id, graph.new_state())
        for state_id, (final, arcs) in enumerate(number_states):
            for word, target in arcs:
                graph.arcs.append((ids[state_id], ids[target], word))
            if final:
                graph.arcs.append((ids[state_id], dst, None))

    begin = graph.START
    bare_numbers: set[str] = set()
    if out_of_grammar and vocab.fillers:
        begin = graph.new_state()
        graph.arcs.append((graph.START, begin, None))
        for word in sorted(vocab.fillers):
            graph.arcs.append((graph.START, begin, word))
    for spec in vocab.commands:
        for pattern in spec.patterns:
            src = begin
            said = 0  # words before this element, at least
            for position, element in enumerate(pattern):
                dst = graph.FINAL if position == len(pattern) - 1 else graph.new_state()
                if out_of_grammar and said >= 2 and not isinstance(element, Literal):
                    # The phrase cut short before a slot ("go up", "turn right"); not after one word: "up" or "go"
                    # alone took the place of "stop" and "land".
                    graph.arcs.append((src, graph.FINAL, None))
                said += len(element.words) if isinstance(element, Literal) else 1
                if isinstance(element, Literal):
                    graph.chain(src, element.words, dst)
                elif isinstance(element, WordSlot):
                    for spoken, _ in element.choices:
                        graph.chain(src, spoken, dst)
                    if out_of_grammar:
                        for word in sorted(vocab.other_directions):
                            graph.arcs.append((src, dst, word))
                else:
                    for choice in element.choices + (element.rejected if out_of_grammar else ()):
                        number_end = graph.new_state()
                        add_number(choice.phrases, src, number_end)
                        for spoken, _ in choice.units:
                            graph.chain(number_end, spoken, dst)
                    if out_of_grammar and element.name not in bare_numbers:
                        # A number alone ("fifty centimeters", the rest of "go up ... fifty centimeters" after a long
                        # pause): without it the decoder made it the nearest whole command ("back eighty").
                        bare_numbers.add(element.name)
                        for choice in element.choices:
                            number_end = graph.new_state()
                            add_number(choice.phrases, begin, number_end)
                            for spoken, _ in choice.units:
                                graph.chain(number_end, spoken, graph.FINAL)
                src = dst

    if rejection_weight is not None and vocab.rejection_words:
        loop = graph.new_state()
        for word in sorted(vocab.rejection_words):
            weights[len(graph.arcs)] = rejection_weight / len(vocab.rejection_words)
            graph.arcs.append((graph.START, loop, word))
            graph.arcs.append((loop, loop, word))
        graph.arcs.append((loop, graph.FINAL, None))
    return graph, weights


def _covering_numbers(numbers: Iterable[Phrase]) -> list[Phrase]:
    """A few number phrases that between them contain every word pair, first word and last word of ``numbers``.

    Vosk estimates a bigram model from its phrase list, so this small set teaches it every number just as well as the
    full 2,000 phrases would, without drowning the other commands in number counts.
    """
    seen: set[tuple[str | None, str | None]] = set()
    chosen = []
    for phrase in sorted(numbers, key=lambda p: (-len(p), p)):
        pairs = set(zip((None, *phrase), (*phrase, None), strict=True))
        if not pairs <= seen:
            seen |= pairs
            chosen.append(phrase)
    return chosen


def to_vosk_phrases(vocab: Vocabulary, with_rejection: bool = True) -> list[str]:
    """Vosk's grammar: phrases covering every word of every command slot, plus the rejection words on their own.

    Options are combined cyclically (phrase k takes option k of each slot, wrapping), not as a full product: the
    bigram model needs every word pair once, not every combination, and a full product (26,000 phrases for English)
    would weigh the number commands so heavily that "take off" became unlikely.
    """
    phrases: list[str] = []
    for spec in vocab.commands:
        for pattern in spec.patterns:
            options: list[list[Phrase]] = []
            for element in pattern:
                if isinstance(element, Literal):
                    options.append([element.words])
                elif isinstance(element, WordSlot):
                    options.append([spoken for spoken, _ in element.choices])
                else:
                    options.append([(*n, *unit) for choice in element.choices for unit, _ in choice.units
                                    for n in _covering_numbers(choice.phrases)])
            count = max(len(choices) for choices in options)
            for k in range(count):
                phrases.append(" ".join(w for choices in options for w in choices[k % len(choices)]))
    if with_rejection:
        phrases.extend(sorted(vocab.rejection_words))
        phrases.append(vocab.unknown_word)
    return list(dict.fromkeys(phrases))


def vosk_grammar_json(vocab: Vocabulary, with_rejection: bool = True) -> str:
    return json.dumps(to_vosk_phrases(vocab, with_rejection), ensure_ascii=False)
