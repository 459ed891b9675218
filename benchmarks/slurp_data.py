"""SLURP text for the spoken-intent benchmark: splits, intent descriptions, the text limit.

The corpus (``../shared/data/slurp`` by default, or ``--data``) holds ``devel.jsonl``
(2,033 requests with one of 71 intents) and ``lm.txt`` (29,104 unlabelled transcripts).
Training transcripts are the ``lm.txt`` lines that do not occur in ``devel.jsonl``, so no
evaluation sentence is ever heard in training.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = [
    "INTENT_DESCRIPTIONS",
    "INTENT_TEMPLATES",
    "default_data_dir",
    "load_slurp",
]

# Written once from the intent names, without looking at the evaluation sentences' wording.
INTENT_DESCRIPTIONS = {
    "alarm_query": "ask about my alarms",
    "alarm_remove": "remove an alarm",
    "alarm_set": "set an alarm",
    "audio_volume_down": "turn the volume down",
    "audio_volume_mute": "mute the sound",
    "audio_volume_up": "turn the volume up",
    "calendar_query": "ask about my calendar and meetings",
    "calendar_remove": "delete an event from my calendar",
    "calendar_set": "add an event or reminder to my calendar",
    "cleaning": "clean the house",
    "cooking_query": "a question about cooking",
    "cooking_recipe": "find a recipe",
    "datetime_convert": "convert a time to another time zone",
    "datetime_query": "ask the date or the time",
    "email_addcontact": "add an email contact",
    "email_query": "check my emails",
    "email_querycontact": "look up a contact's details",
    "email_sendemail": "send an email",
    "factoid": "a general knowledge question",
    "general_greet": "say hello",
    "general_joke": "tell me a joke",
    "general_quirky": "chat about something random",
    "greet": "greeting",
    "hue_lightoff": "switch the lights off",
    "hue_lightup": "make the lights brighter",
    "iot_cleaning": "start the robot vacuum cleaner",
    "iot_coffee": "make a coffee",
    "iot_hue_lightchange": "change the colour of the lights",
    "iot_hue_lightdim": "dim the lights",
    "iot_hue_lightoff": "turn off the lights",
    "iot_hue_lighton": "turn on the lights",
    "iot_hue_lightup": "brighten the lights",
    "iot_wemo_off": "turn off the smart plug",
    "iot_wemo_on": "turn on the smart plug",
    "likeness": "say what I like",
    "lists_createoradd": "add an item to a list",
    "lists_query": "read out a list",
    "lists_remove": "remove an item from a list",
    "music": "music",
    "music_dislikeness": "say I dislike this song",
    "music_likeness": "say I like this song",
    "music_query": "ask which song is playing",
    "music_settings": "change music settings like shuffle or repeat",
    "news_query": "read me the news",
    "play_audiobook": "play an audiobook",
    "play_game": "play a game",
    "play_music": "play music",
    "play_podcasts": "play a podcast",
    "play_radio": "play the radio",
    "podcasts": "podcasts",
    "post": "post a message",
    "qa_currency": "currency exchange rate",
    "qa_definition": "define a word",
    "qa_factoid": "a question about a fact",
    "qa_maths": "a maths calculation",
    "qa_stock": "stock market price",
    "query": "a question",
    "quirky": "something odd",
    "recommendation_events": "recommend events nearby",
    "recommendation_locations": "recommend a place to go",
    "recommendation_movies": "recommend a movie",
    "set": "set something",
    "social_post": "post on social media or complain to a company",
    "social_query": "check social media updates",
    "takeaway_order": "order takeaway food",
    "takeaway_query": "ask about a takeaway order or delivery",
    "transport_query": "ask about trains and travel",
    "transport_taxi": "book a taxi",
    "transport_ticket": "book a train ticket",
    "transport_traffic": "ask about the traffic",
    "weather_query": "ask about the weather",
}

INTENT_TEMPLATES = ["{}", "a request to {}", "the user wants to {}"]


def default_data_dir() -> Path:
    """``$CWCL_SLURP_DIR``, else ``shared/data/slurp`` beside the repository."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "slurp"
    return Path(os.environ.get("CWCL_SLURP_DIR", default))


def load_slurp(data_dir=None) -> dict:
    """Read SLURP text and split it.

    Returns
    -------
    data : dict
        ``train_texts`` (unique ``lm.txt`` transcripts not in devel, in file order),
        ``eval_texts`` and ``eval_intents`` (every ``devel.jsonl`` request), ``intents``
        (the sorted intent names).
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    devel_path, lm_path = data_dir / "devel.jsonl", data_dir / "lm.txt"
    for path in (devel_path, lm_path):
        if not path.exists():
            raise FileNotFoundError(f"--data: {path} not found (expected the SLURP text folder).")
    records = [json.loads(line) for line in devel_path.read_text().splitlines() if line.strip()]
    eval_texts = [record["sentence"] for record in records]
    eval_intents = [record["intent"] for record in records]
    evaluation = set(eval_texts)
    seen: set = set()
    train_texts = []
    for line in lm_path.read_text().splitlines():
        text = line.strip()
        if text and text not in evaluation and text not in seen:
            seen.add(text)
            train_texts.append(text)
    missing = sorted(set(eval_intents) - set(INTENT_DESCRIPTIONS))
    if missing:
        raise ValueError(f"No description for intents {missing}.")
    return {
        "train_texts": train_texts,
        "eval_texts": eval_texts,
        "eval_intents": eval_intents,
        "intents": sorted(set(eval_intents)),
    }
