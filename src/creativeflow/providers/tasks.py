"""The six LLM task types of graphic-novel-api.md ("Text Generation (LLM Tasks)").

Each task has an input model (what a client sends, with real limits), an output model (what
any provider must answer) and a `TaskSpec` that writes the request for a remote language model:
a role as the system prompt, specific instructions with the inputs, and the output's JSON
Schema (artnex.md "AI Integration Guide": role, instructions, exact JSON structure, a
temperature suited to the work). The local provider builds the same output models from the
same inputs, so callers never care which provider answered.
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from creativeflow.providers.base import TextRequest
from creativeflow.providers.errors import MalformedResponse

SCENE_TEXT_MAX_LENGTH = 20_000
DESCRIPTION_MAX_LENGTH = 5_000
CONTEXT_MAX_LENGTH = 10_000
MAX_CHARACTERS = 20
# Standing directions added to a free-text field (by a task run about a story's thing) come
# after the material, on a line of their own starting with this label.
INSTRUCTIONS_LABEL = "Instructions:"
_DIRECTIONS = re.compile(rf"(?:^|\n){re.escape(INSTRUCTIONS_LABEL)}(?:\n|$)")

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
HexColour = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"),
]


def _text(max_length: int) -> Any:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


class TaskType(StrEnum):
    SCENE_SUMMARY = "scene_summary"
    CHARACTER_PROFILE = "character_profile"
    PANEL_DESCRIPTION = "panel_description"
    DIALOGUE = "dialogue"
    CHAPTER_OUTLINE = "chapter_outline"
    VISUAL_PROMPT = "visual_prompt"


class DialogueTone(StrEnum):
    NEUTRAL = "neutral"
    DRAMATIC = "dramatic"
    HUMOROUS = "humorous"
    TENSE = "tense"
    ROMANTIC = "romantic"
    HOPEFUL = "hopeful"
    MELANCHOLIC = "melancholic"
    ANGRY = "angry"


class ShotType(StrEnum):
    ESTABLISHING = "establishing"
    WIDE = "wide"
    MEDIUM = "medium"
    MEDIUM_CLOSE_UP = "medium_close_up"
    CLOSE_UP = "close_up"
    EXTREME_CLOSE_UP = "extreme_close_up"
    OVER_THE_SHOULDER = "over_the_shoulder"
    POINT_OF_VIEW = "point_of_view"
    INSERT = "insert"


class AspectRatio(StrEnum):
    SQUARE = "1:1"
    LANDSCAPE_4_3 = "4:3"
    PORTRAIT_3_4 = "3:4"
    LANDSCAPE_3_2 = "3:2"
    PORTRAIT_2_3 = "2:3"
    WIDESCREEN = "16:9"
    VERTICAL = "9:16"


def _shot_name(value: object) -> object:
    """Models write shots many ways ("Close-up shot", "over the shoulder"): one spelling."""
    if isinstance(value, str):
        words = re.sub(r"[\s\-]+", "_", value.strip().lower().replace("'", ""))
        return re.sub(r"_shot$", "", words)
    return value


class TaskInput(BaseModel):
    """A task's input: strict, so a misspelt field is an error rather than ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TaskOutput(BaseModel):
    """A task's output. The schema given to models forbids extra keys; parsing drops them,
    since a model that adds a stray note still answered the question."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": False})


# -- inputs ------------------------------------------------------------------------------------


class SceneSummaryInput(TaskInput):
    scene_text: Annotated[str, _text(SCENE_TEXT_MAX_LENGTH)] = Field(
        description="The scene's prose or script."
    )
    title: Label | None = Field(default=None, description="The scene's title, if it has one.")
    characters: list[Name] = Field(
        default_factory=list,
        max_length=MAX_CHARACTERS,
        description="Names of the project's characters, so they are recognised and spelled right.",
    )
    max_sentences: int = Field(default=3, ge=1, le=10, description="Length of the summary.")


class CharacterProfileInput(TaskInput):
    name: Name = Field(description="The character's name.")
    description: Annotated[str, _text(DESCRIPTION_MAX_LENGTH)] = Field(
        description="What is known about the character: looks, history, behaviour."
    )
    traits: list[Annotated[str, _text(60)]] = Field(
        default_factory=list, max_length=20, description="Personality traits already decided."
    )
    role: Label | None = Field(
        default=None, description="Story role: protagonist, antagonist, mentor, sidekick, ..."
    )
    story_context: Annotated[str, _text(CONTEXT_MAX_LENGTH)] | None = Field(
        default=None, description="The story around the character: premise, other characters."
    )


class PanelDescriptionInput(TaskInput):
    scene_text: Annotated[str, _text(SCENE_TEXT_MAX_LENGTH)] = Field(
        description="The scene to break into panels."
    )
    panel_count: int = Field(default=4, ge=1, le=12, description="How many panels to describe.")
    style: Label | None = Field(default=None, description="Art style, e.g. 'noir ink'.")
    characters: list[Name] = Field(
        default_factory=list,
        max_length=MAX_CHARACTERS,
        description="Names of the characters that may appear.",
    )


class DialogueInput(TaskInput):
    situation: Annotated[str, _text(DESCRIPTION_MAX_LENGTH)] = Field(
        description="What is happening and what the exchange is about."
    )
    characters: list[Name] = Field(
        min_length=1, max_length=6, description="Who speaks, in the order they join."
    )
    tone: DialogueTone | None = Field(
        default=None, description="One tone for every option; unset, each option tries another."
    )
    options: int = Field(default=3, ge=1, le=5, description="How many alternative exchanges.")
    lines_per_option: int = Field(default=4, ge=1, le=12, description="Lines in each exchange.")


class ChapterOutlineInput(TaskInput):
    premise: Annotated[str, _text(CONTEXT_MAX_LENGTH)] = Field(
        description="The story's premise: who wants what, and what stands in the way."
    )
    synopsis: Annotated[str, _text(CONTEXT_MAX_LENGTH)] | None = Field(
        default=None, description="What this chapter should cover, if already known."
    )
    title: Label | None = Field(default=None, description="The chapter's working title.")
    chapter_number: int | None = Field(default=None, ge=1, le=1000)
    previous_chapters: list[Annotated[str, _text(2000)]] = Field(
        default_factory=list,
        max_length=50,
        description="Summaries of the chapters before this one, oldest first.",
    )
    characters: list[Name] = Field(default_factory=list, max_length=MAX_CHARACTERS)
    scene_count: int = Field(default=5, ge=1, le=20, description="How many scenes to plan.")


class VisualPromptInput(TaskInput):
    description: Annotated[str, _text(DESCRIPTION_MAX_LENGTH)] = Field(
        description="What the image shows."
    )
    style: Label | None = Field(default=None, description="Art style, e.g. 'watercolor'.")
    palette: list[HexColour] = Field(
        default_factory=list, max_length=8, description="Hex colours such as '#1a2b3c'."
    )
    characters: list[Name] = Field(default_factory=list, max_length=10)
    location: Label | None = Field(default=None, description="Where the image is set.")
    mood: Annotated[str, _text(60)] | None = Field(default=None)
    aspect: AspectRatio = Field(default=AspectRatio.SQUARE, description="Width:height.")
    avoid: list[Annotated[str, _text(60)]] = Field(
        default_factory=list, max_length=20, description="Things the image must not show."
    )


# -- outputs -----------------------------------------------------------------------------------


class SceneSummaryOutput(TaskOutput):
    summary: str = Field(min_length=1, max_length=5000)
    key_points: list[str] = Field(max_length=20)
    characters: list[str] = Field(max_length=50)
    keywords: list[str] = Field(max_length=30)
    mood: str = Field(min_length=1, max_length=60)


class Relationship(TaskOutput):
    character: str = Field(min_length=1, max_length=80)
    relationship: str = Field(min_length=1, max_length=200)


class CharacterProfileOutput(TaskOutput):
    name: str = Field(min_length=1, max_length=80)
    summary: str = Field(min_length=1, max_length=3000)
    personality: list[str] = Field(max_length=20)
    appearance: str = Field(max_length=2000)
    motivations: list[str] = Field(max_length=10)
    relationships: list[Relationship] = Field(max_length=20)
    voice: str = Field(max_length=1000)


class Panel(TaskOutput):
    index: int = Field(ge=1, le=12, description="1-based reading order.")
    shot: Annotated[ShotType, BeforeValidator(_shot_name)]
    description: str = Field(min_length=1, max_length=2000)
    characters: list[str] = Field(max_length=20)
    dialogue_hint: str | None = Field(default=None, max_length=500)
    camera: str = Field(max_length=300, description="Angle, lens and movement.")


class PanelDescriptionOutput(TaskOutput):
    panels: list[Panel] = Field(min_length=1, max_length=12)


class DialogueLine(TaskOutput):
    character: str = Field(min_length=1, max_length=80)
    text: str = Field(min_length=1, max_length=1000)


class DialogueOption(TaskOutput):
    tone: str = Field(min_length=1, max_length=40)
    lines: list[DialogueLine] = Field(min_length=1, max_length=12)


class DialogueOutput(TaskOutput):
    options: list[DialogueOption] = Field(min_length=1, max_length=5)


class OutlineScene(TaskOutput):
    index: int = Field(ge=1, le=20)
    title: str = Field(min_length=1, max_length=200)
    summary: str = Field(min_length=1, max_length=2000)
    characters: list[str] = Field(max_length=20)


class ChapterOutlineOutput(TaskOutput):
    title: str = Field(min_length=1, max_length=200)
    logline: str = Field(min_length=1, max_length=600)
    scenes: list[OutlineScene] = Field(min_length=1, max_length=20)


class VisualPromptOutput(TaskOutput):
    prompt: str = Field(min_length=1, max_length=2000)
    negative_prompt: str = Field(max_length=1000)
    style: str = Field(max_length=100)
    palette: list[HexColour] = Field(max_length=8)
    aspect_ratio: str = Field(pattern=r"^\d{1,2}:\d{1,2}$")


# -- specs -------------------------------------------------------------------------------------

_JSON_INSTRUCTION = (
    "Respond with only one JSON object (no prose, no code fence) that matches this JSON Schema:"
)


def _label(field_name: str) -> str:
    return field_name.replace("_", " ").capitalize()


def render_inputs(data: BaseModel) -> str:
    """The inputs as prompt text: short values as `- Label: value` lines, long texts as
    quoted blocks, so the model can tell the facts from the instructions."""
    lines: list[str] = []
    blocks: list[str] = []
    for field_name, value in data.model_dump(mode="json").items():
        if value is None or value == []:
            continue
        label = _label(field_name)
        if isinstance(value, list) and any(len(str(item)) > 80 for item in value):
            items = "\n".join(f"{number}. {item}" for number, item in enumerate(value, 1))
            blocks.append(f"{label}:\n{items}")
        elif isinstance(value, list):
            lines.append(f"- {label}: {', '.join(str(item) for item in value)}")
        elif isinstance(value, str) and (len(value) > 120 or "\n" in value):
            blocks.append(f'{label}:\n"""\n{value}\n"""')
        else:
            lines.append(f"- {label}: {value}")
    return "\n\n".join(part for part in ("\n".join(lines), *blocks) if part)


@dataclass(frozen=True)
class TaskSpec:
    """One task type: its models and how to ask a language model for it. `instructions` is a
    template over the input's field names (`{panel_count}`)."""

    type: TaskType
    title: str
    description: str
    # builtins.type: the field `type` shadows the builtin inside the class body.
    input_model: builtins.type[TaskInput]
    output_model: builtins.type[TaskOutput]
    system: str
    instructions: str
    temperature: float
    max_tokens: int

    def build_request(
        self,
        data: BaseModel,
        *,
        seed: int | None,
        temperature: float | None = None,
        timeout: float,
        revision_notes: Sequence[str] = (),
    ) -> TextRequest:
        """The request for this task built from validated `data`; with `revision_notes`, the
        prompt asks for the answer again with those changes."""
        if not isinstance(data, self.input_model):
            raise TypeError(f"{self.type} needs {self.input_model.__name__}, not {type(data)}")
        schema = self.output_model.model_json_schema()
        instructions = self.instructions.format(**dict(data))
        revision = (
            "\n\nThis answer revises an earlier one: keep what works and apply these notes:\n"
            + "\n".join(f"- {note}" for note in revision_notes)
            if revision_notes
            else ""
        )
        prompt = (
            f"{instructions}\n\n{render_inputs(data)}{revision}\n\n"
            f"{_JSON_INSTRUCTION}\n{json.dumps(schema, ensure_ascii=False)}"
        )
        return TextRequest(
            task=self.type.value,
            prompt=prompt,
            system=self.system,
            inputs=data.model_dump(mode="json"),
            output_schema=schema,
            seed=seed,
            temperature=self.temperature if temperature is None else temperature,
            max_tokens=self.max_tokens,
            timeout=timeout,
        )


_EDITOR = (
    "You are a senior story editor for graphic novels and webtoons. You work only from the "
    "material you are given: you never invent events or characters it does not support, and "
    "you spell names exactly as written. You write in the language of the material."
)

TASKS: dict[TaskType, TaskSpec] = {
    spec.type: spec
    for spec in (
        TaskSpec(
            type=TaskType.SCENE_SUMMARY,
            title="Scene summary",
            description="Summarise a scene: the gist, its key points, who appears, keywords, mood.",
            input_model=SceneSummaryInput,
            output_model=SceneSummaryOutput,
            system=_EDITOR,
            instructions=(
                "Summarise the scene below in at most {max_sentences} sentences, keeping the "
                "order of events. List its key story points (one short line each), every "
                "character who appears, up to 10 keywords taken from the text, and the scene's "
                "overall mood in one or two words."
            ),
            temperature=0.3,
            max_tokens=700,
        ),
        TaskSpec(
            type=TaskType.CHARACTER_PROFILE,
            title="Character profile",
            description="Build a character profile: personality, appearance, motives, voice.",
            input_model=CharacterProfileInput,
            output_model=CharacterProfileOutput,
            system=(
                "You are a character designer and story editor for graphic novels. You build "
                "consistent, specific characters that artists can draw and writers can voice, "
                "grounded in what the material says about them."
            ),
            instructions=(
                "Write a profile of {name}: a two or three sentence summary, personality traits "
                "(keep the given ones), a visual description an artist can draw from, what "
                "drives them, their relationships to other characters named in the material, "
                "and how they speak."
            ),
            temperature=0.6,
            max_tokens=900,
        ),
        TaskSpec(
            type=TaskType.PANEL_DESCRIPTION,
            title="Panel descriptions",
            description="Break a scene into panels with shot type, action, characters, camera.",
            input_model=PanelDescriptionInput,
            output_model=PanelDescriptionOutput,
            system=(
                "You are a comic storyboard artist. You break scenes into panels that read "
                "clearly left to right, vary the shots for rhythm, and describe only what can "
                "be drawn."
            ),
            instructions=(
                "Break the scene below into exactly {panel_count} panels in reading order. For "
                "each give its 1-based index, a shot type, what the panel shows, the characters "
                "in it, a hint of its dialogue (or null) and the camera angle and lens."
            ),
            temperature=0.5,
            max_tokens=1500,
        ),
        TaskSpec(
            type=TaskType.DIALOGUE,
            title="Dialogue options",
            description="Write alternative exchanges between characters for a situation.",
            input_model=DialogueInput,
            output_model=DialogueOutput,
            system=(
                "You are a dialogue writer for graphic novels. Lines are short enough for a "
                "speech bubble, each character sounds like themselves, and subtext beats "
                "exposition."
            ),
            instructions=(
                "Write {options} alternative exchanges for the situation below, each of about "
                "{lines_per_option} lines, spoken only by the characters listed. Give each "
                "option its tone."
            ),
            temperature=0.9,
            max_tokens=1200,
        ),
        TaskSpec(
            type=TaskType.CHAPTER_OUTLINE,
            title="Chapter outline",
            description="Plan a chapter: title, logline and its scenes in order.",
            input_model=ChapterOutlineInput,
            output_model=ChapterOutlineOutput,
            system=_EDITOR,
            instructions=(
                "Outline the next chapter of the story below in exactly {scene_count} scenes: "
                "a title, a one-sentence logline, and for each scene its 1-based index, a "
                "title, a short summary and the characters in it. Continue from the previous "
                "chapters, if any, and build to a turn at the end."
            ),
            temperature=0.7,
            max_tokens=1500,
        ),
        TaskSpec(
            type=TaskType.VISUAL_PROMPT,
            title="Image prompt",
            description="Turn a description into a prompt for an image model.",
            input_model=VisualPromptInput,
            output_model=VisualPromptOutput,
            system=(
                "You are a prompt engineer for Stable Diffusion and similar image models. You "
                "write comma-separated prompts: subject first, then setting, details, style, "
                "lighting and colour, and a negative prompt of what to avoid."
            ),
            instructions=(
                "Write an image prompt for the description below, in the given style and "
                "colours, with a negative prompt, the style, the palette as hex colours and "
                "the aspect ratio."
            ),
            temperature=0.6,
            max_tokens=400,
        ),
    )
}


def material_of(text: str) -> str:
    """`text` without its directions: what comes before a line starting with
    `INSTRUCTIONS_LABEL` (all of it when there is none)."""
    found = _DIRECTIONS.search(text)
    return (text if found is None else text[: found.start()]).strip()


def validate_input(task: TaskType, data: dict[str, Any]) -> TaskInput:
    """The task's input model built from `data` (raises pydantic's ValidationError)."""
    return TASKS[task].input_model.model_validate(data)


_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)\s*```", re.DOTALL)


def _decode(output: str, task: TaskType, provider: str) -> Any:
    text = output.strip()
    fenced = _FENCE.search(text)
    if fenced and not text.startswith("{"):
        text = fenced.group(1)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise MalformedResponse(
            f"{provider} answered {task} with invalid JSON: {error.msg} at line "
            f"{error.lineno} column {error.colno}",
            provider=provider,
        ) from None


def parse_output(task: TaskType, output: dict[str, Any] | str, provider: str) -> TaskOutput:
    """A provider's answer as the task's output model. A string is decoded as JSON (a JSON
    object in a ```json fence too); anything else than a valid object raises
    `MalformedResponse` naming the first invalid field."""
    data = _decode(output, task, provider) if isinstance(output, str) else output
    if not isinstance(data, dict):
        raise MalformedResponse(
            f"{provider} answered {task} with JSON {type(data).__name__}, not an object",
            provider=provider,
        )
    try:
        return TASKS[task].output_model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(the answer)"
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise MalformedResponse(
            f"{provider} answered {task} with an invalid '{where}': {first['msg']}{more}",
            provider=provider,
        ) from None


def task_catalog() -> list[dict[str, Any]]:
    """Every task type with its JSON Schemas, for `GET /tasks/types`."""
    return [
        {
            "name": spec.type.value,
            "title": spec.title,
            "description": spec.description,
            "input_schema": spec.input_model.model_json_schema(),
            "output_schema": spec.output_model.model_json_schema(),
        }
        for spec in TASKS.values()
    ]
