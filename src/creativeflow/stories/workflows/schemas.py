"""Request and response models of the story workflows, and the input of their jobs."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from creativeflow.providers.schemas import Seed
from creativeflow.providers.tasks import (
    MAX_CHARACTERS,
    SCENE_TEXT_MAX_LENGTH,
    ChapterOutlineInput,
    PanelDescriptionInput,
)
from creativeflow.stories.generation.schemas import ImageOptions

MAX_PANELS = 12
MAX_SCENES = 20
MAX_EXAMPLES = 5

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
Priority = Field(default=0, ge=-10, le=10, description="Queue priority (-10..10)")


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# -- requests ------------------------------------------------------------------------------------


class BreakdownRequest(_Input):
    """A scene's text made into panels, as a storyboard draft."""

    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=SCENE_TEXT_MAX_LENGTH,
        description="The scene's prose or script (default: the scene's own text: its title, "
        "summary, notes and any panels' descriptions and dialogue)",
    )
    panel_count: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PANELS,
        description="Panels to make (default: one per paragraph of the text, or per two "
        "sentences of a single paragraph; at most 12)",
    )
    seed: Seed | None = Field(default=None, description="Same seed, same text: same panels")
    priority: int = Priority


class StoryboardRequest(BreakdownRequest):
    scene_id: uuid.UUID = Field(description="The scene (you must be able to edit it)")


class OutlineSceneIn(_Input):
    title: str = Field(min_length=1, max_length=200)
    summary: str = Field(min_length=1, max_length=2000, description="What happens in it")
    characters: list[Name] = Field(
        default_factory=list, max_length=MAX_CHARACTERS, description="Who is in it, by name"
    )


class OutlineIn(_Input):
    scenes: list[OutlineSceneIn] = Field(min_length=1, max_length=MAX_SCENES)


class GenerateChapterRequest(ImageOptions):
    """A chapter generated: scenes from an outline, their panels, optionally their images.
    `count`, `seed` and `format` are the images' (the seed also makes the outline and the
    storyboards repeatable)."""

    chapter_id: uuid.UUID = Field(description="The chapter (you must be able to edit it)")
    outline: OutlineIn | None = Field(
        default=None,
        description="The scenes to make (default: a chapter_outline task from the chapter's "
        "title, summary and notes, the story before it and the cast)",
    )
    scene_count: int = Field(
        default=5, ge=1, le=MAX_SCENES, description="Scenes the outline task plans"
    )
    panels_per_scene: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PANELS,
        description="Panels per scene (default: from each scene's text)",
    )
    images: bool = Field(default=False, description="Also generate every new panel's image")


# -- jobs ----------------------------------------------------------------------------------------

Workflow = Literal["storyboard", "breakdown", "generate_chapter"]


class StoryboardJobInput(BaseModel):
    """`stories.storyboard`: a `panel_description` task over the scene's text, the panels laid
    out from its answer. Without `apply` its success writes one storyboard draft; with it
    (a generated chapter) the panels go into the scene, and with `images` each gets an image
    job in the same group."""

    model_config = ConfigDict(extra="forbid")

    project_id: uuid.UUID
    scene_id: uuid.UUID
    task: PanelDescriptionInput
    seed: Seed | None = None
    workflow: Workflow = "storyboard"
    apply: bool = False
    images: ImageOptions | None = None


class ChapterPlanInput(BaseModel):
    """`stories.chapter_plan`: the first stage of a generated chapter. Its success appends the
    scenes to the chapter and queues a `stories.storyboard` job for each."""

    model_config = ConfigDict(extra="forbid")

    project_id: uuid.UUID
    chapter_id: uuid.UUID
    outline: list[OutlineSceneIn] | None = Field(default=None, max_length=MAX_SCENES)
    task: ChapterOutlineInput | None = None  # when no outline was given
    seed: Seed | None = None
    panels_per_scene: int | None = Field(default=None, ge=1, le=MAX_PANELS)
    images: ImageOptions | None = None


class GenerateChapterInput(GenerateChapterRequest):
    """The group of a generated chapter: what was asked, for which project."""

    project_id: uuid.UUID


# -- suggestions ---------------------------------------------------------------------------------

SuggestionCode = Literal[
    "NO_CHAPTERS",
    "STYLE_GUIDE_MISSING",
    "DRAFTS_PENDING",
    "LOCKED_CHARACTERS_WITHOUT_PRIMARY_DESIGN",
    "CHARACTERS_WITHOUT_DESIGN",
    "EMPTY_CHAPTERS",
    "SCENES_WITHOUT_PANELS",
    "SPEAKERS_NOT_CAST",
    "PANELS_WITHOUT_IMAGES",
    "CHAPTERS_WITHOUT_COVER",
]


class SuggestedAction(BaseModel):
    method: Literal["GET", "POST", "PUT", "PATCH"]
    path: str = Field(description="The route that would do it, for the first example")
    body: dict[str, Any] | None = None


class Suggestion(BaseModel):
    code: SuggestionCode
    priority: int = Field(description="1 first: what to do before the rest")
    count: int = Field(description="How many things it is about")
    message: str
    action: SuggestedAction
    examples: list[uuid.UUID] = Field(
        max_length=MAX_EXAMPLES, description="Some of them (at most 5), first things first"
    )
    details: dict[str, int] | None = Field(
        default=None, description="Counts by kind, where it has them (drafts by target type)"
    )
