"""Training recipes: the settings a student gets when the user leaves them to the library.

An aligner's ``learning_rate``, ``max_epochs`` and ``temperature`` default to ``"auto"``
(as scikit-learn's ``TSNE(learning_rate="auto")``), which ``fit`` resolves from the recipe of
its student; a value the user sets always wins. A recipe can also give the student options
for its default checkpoint (which checkpoint, how many layers to fine-tune): they apply only
when the user names no checkpoint (neither ``student__name_or_path`` nor
``student__pretrained``), since depth and rate were tuned for that checkpoint, and each
option the user sets wins over them.

Every setting here comes from a benchmark row on held-out speakers or voices, named in
``evidence``; a change needs a benchmark row that justifies it. ``docs/guide/recipes.md``
shows the table that :func:`recipe_table` writes from :data:`RECIPES`, and a test keeps the
two in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "AUTO",
    "DEFAULT_RECIPE",
    "RECIPES",
    "Recipe",
    "recipe_for",
    "recipe_table",
    "resolve_settings",
    "student_defaults",
]

#: The value of an aligner setting that the recipe of its student decides.
AUTO = "auto"

#: The aligner settings a recipe decides.
SETTINGS = ("learning_rate", "max_epochs", "temperature")

# Options that choose the checkpoint: when the user gives one, the recipe's student options,
# tuned for the default checkpoint, do not apply.
_CHECKPOINT_OPTIONS = ("name_or_path", "pretrained")


@dataclass(frozen=True)
class Recipe:
    """The settings a student is trained with when the user leaves them at ``"auto"``.

    Parameters
    ----------
    learning_rate : float
        AdamW's (peak) learning rate.
    max_epochs : int
        Epochs of one ``fit``.
    temperature : float
        Softmax temperature of the loss (the starting value when it is learned).
    student_options : mapping, default={}
        ``student__*`` defaults for the default checkpoint, without the prefix.
    checkpoint : str, default=""
        The default checkpoint, in words, for the documentation table.
    evidence : tuple of str, default=()
        The benchmark result files (in ``benchmarks/results/``) behind the settings.
    """

    learning_rate: float
    max_epochs: int
    temperature: float
    student_options: Mapping = field(default_factory=dict)
    checkpoint: str = ""
    evidence: tuple = ()

    def __post_init__(self):
        # Read-only: one recipe object is shared by every aligner.
        object.__setattr__(self, "student_options", MappingProxyType(dict(self.student_options)))


#: What every student without a recipe of its own gets (the aligner's long-standing defaults).
DEFAULT_RECIPE = Recipe(learning_rate=1e-3, max_epochs=20, temperature=0.07)

#: Recipes by student alias. Whisper: pretrained tiny.en, only the top encoder layer trained.
#: On spoken intents (voices never heard in training) lr 1e-3 beat 3e-4 by 10 points and 3e-3
#: by 4, one trained layer beat two, and temperature 0.12 beat 0.07; with these settings the
#: student reached 90 % of the text-only limit; on spoken digits it reached 0.952 for a speaker
#: held out of training.
RECIPES: Mapping[str, Recipe] = MappingProxyType(
    {
        "whisper": Recipe(
            learning_rate=1e-3,
            max_epochs=4,
            temperature=0.12,
            student_options={"trainable_layers": 1},
            checkpoint="pretrained Whisper tiny.en, offline (`whisper_tiny_en_path()`)",
            evidence=(
                "spoken_intents_whisper_v2_t012.json",
                "spoken_intents_proxy_learning_rate.json",
                "spoken_intents_proxy_levers.json",
                "default_speed.json",
            ),
        ),
    }
)


def recipe_for(student) -> Recipe:
    """The recipe of a ``student`` value: its alias's, else :data:`DEFAULT_RECIPE`.

    Parameters
    ----------
    student : str or torch.nn.Module
        The aligner's ``student`` parameter.

    Returns
    -------
    recipe : Recipe
    """
    if isinstance(student, str):
        return RECIPES.get(student, DEFAULT_RECIPE)
    return DEFAULT_RECIPE


def resolve_settings(student, given: Mapping) -> dict:
    """The aligner settings a fit uses: each given value, or the recipe's where ``"auto"``.

    Parameters
    ----------
    student : str or torch.nn.Module
        The aligner's ``student`` parameter.
    given : mapping
        ``learning_rate``, ``max_epochs`` and ``temperature`` as set on the aligner.

    Returns
    -------
    settings : dict
        The same keys, with numbers only.
    """
    recipe = recipe_for(student)
    return {
        name: getattr(recipe, name) if _is_auto(given[name]) else given[name] for name in SETTINGS
    }


def student_defaults(student, options: Mapping) -> dict:
    """The ``student__*`` options a student is built with: the user's over the recipe's.

    Parameters
    ----------
    student : str or torch.nn.Module
    options : mapping
        The user's ``student__*`` options without the prefix.

    Returns
    -------
    options : dict
        The recipe's student options (when the user names no checkpoint) updated with the
        user's.
    """
    if any(name in options for name in _CHECKPOINT_OPTIONS):
        return dict(options)
    return {**recipe_for(student).student_options, **options}


def _is_auto(value) -> bool:
    return isinstance(value, str) and value == AUTO


def recipe_table() -> str:
    """The recipes as a markdown table, for the documentation.

    Returns
    -------
    table : str
        One row per student alias with a recipe, then one for every other student.
    """
    rows = [
        "| student | checkpoint | student options | learning rate | epochs | temperature | "
        "evidence (`benchmarks/results/`) |",
        "|---|---|---|---|---|---|---|",
    ]
    entries = [*((f"`{name}`", recipe) for name, recipe in RECIPES.items())]
    entries.append(("every other student", DEFAULT_RECIPE))
    for name, recipe in entries:
        options = ", ".join(
            f"`student__{key}={value!r}`" for key, value in recipe.student_options.items()
        )
        evidence = ", ".join(f"`{path}`" for path in recipe.evidence)
        rows.append(
            f"| {name} | {recipe.checkpoint or 'its own default'} | {options or 'none'} | "
            f"{recipe.learning_rate:g} | {recipe.max_epochs} | {recipe.temperature:g} | "
            f"{evidence or 'the long-standing defaults'} |"
        )
    return "\n".join(rows) + "\n"
