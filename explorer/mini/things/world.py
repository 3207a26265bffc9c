"""What the ``mini-things`` model knows: its things, backgrounds, positions, sizes and captions.

Everything a caption can say is listed here and written to a machine-readable ``world.json``
(``draw.write_world``/``read_world``), from which the caption vocabulary (``vocabulary``) follows.
Things are Noto Color Emoji glyphs, one codepoint each, chosen to stay distinct at 36 px.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from explorer.mini import data as shapes_world

PICTURE = 128  # picture side, pixels
SIZES = {"small": 36, "large": 56}  # longer side of a drawn glyph, pixels
GRID = (24, 64, 104)  # centre coordinates of the 3x3 position grid, pixels
POSITIONS = shapes_world.POSITIONS  # word -> (column, row): the shapes world's nine words
BACKGROUNDS = {  # plain colours, RGB 0-255; far apart, and each keeps most glyphs visible
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
    "blue": (40, 80, 220),
    "green": (40, 150, 60),
    "yellow": (245, 225, 60),
    "red": (210, 40, 40),
    "purple": (120, 50, 160),
    "orange": (250, 140, 20),
    "pink": (250, 160, 200),
}


@dataclass(frozen=True)
class Thing:
    """One drawable thing: its caption name, synonyms, emoji and group."""

    name: str
    emoji: str
    group: str
    synonyms: tuple[str, ...] = ()


def _things(group: str, rows: str) -> list[Thing]:
    """Parse ``"emoji name[/synonym...]; ..."`` rows of one group."""
    out = []
    for row in rows.split(";"):
        emoji, words = row.strip().split(" ", 1)
        names = [w.strip() for w in words.split("/")]
        out.append(Thing(names[0], emoji, group, tuple(names[1:])))
    return out


# fmt: off
THINGS: tuple[Thing, ...] = tuple(
    _things("animals", "🐈 cat/kitten; 🐕 dog/puppy; 🐁 mouse; 🐇 rabbit/bunny; 🦊 fox; 🐼 panda; "
            "🐨 koala; 🐅 tiger; 🦁 lion; 🐎 horse; 🐄 cow; 🐖 pig; 🐑 sheep; 🐪 camel; "
            "🦒 giraffe; 🐘 elephant; 🐒 monkey; 🐔 chicken/hen; 🐧 penguin; 🦉 owl; 🦆 duck; "
            "🦜 parrot; 🐸 frog; 🐢 turtle; 🐍 snake; 🐊 crocodile; 🦕 dinosaur; 🐋 whale; "
            "🐬 dolphin; 🐟 fish; 🐙 octopus; 🦀 crab; 🐌 snail; 🦋 butterfly; 🐝 bee; "
            "🐞 ladybug; 🦈 shark; 🦓 zebra; 🦩 flamingo")
    + _things("food", "🍎 apple; 🍌 banana; 🍇 grapes; 🍉 watermelon; 🍓 strawberry; "
              "🍒 cherries; 🍋 lemon; 🍍 pineapple; 🍐 pear; 🥕 carrot; 🌽 corn; 🥦 broccoli; "
              "🍄 mushroom; 🍕 pizza; 🍔 burger/hamburger; 🌭 hot dog; 🌮 taco; 🍞 bread; "
              "🧀 cheese; 🥚 egg; 🎂 birthday cake/cake; 🍩 doughnut/donut; 🍪 cookie; "
              "🍦 ice cream; 🍭 lollipop; ☕ coffee/cup of coffee; 🍿 popcorn; 🥐 croissant; "
              "🥑 avocado; 🍆 eggplant; 🍅 tomato; 🥥 coconut; 🌶 chili pepper; 🥨 pretzel")
    + _things("plants", "🌳 tree; 🌲 pine tree/fir tree; 🌴 palm tree; 🌵 cactus; 🌷 tulip; "
              "🌹 rose; 🌻 sunflower; 🍁 maple leaf; 🍀 clover")
    + _things("vehicles", "🚗 car; 🚌 bus; 🚕 taxi; 🚒 fire engine/fire truck; 🚓 police car; "
              "🚑 ambulance; 🚚 truck/lorry; 🚜 tractor; 🚲 bicycle/bike; 🚂 train/locomotive; "
              "🚀 rocket; 🚁 helicopter; ⛵ sailboat; 🚢 ship; 🛴 scooter; 🛶 canoe; "
              "✈ airplane/plane; 🛸 flying saucer/spaceship; 🛹 skateboard")
    + _things("buildings", "🏠 house; 🏰 castle; ⛪ church; ⛺ tent; 🏭 factory; 🏥 hospital; "
              "🗼 tower; 🗽 statue of liberty; ⛲ fountain; 🌋 volcano; 🗿 stone head")
    + _things("weather", "☀ sun; ☁ cloud; 🌈 rainbow; ❄ snowflake; ⚡ lightning; "
              "☔ umbrella; ⛄ snowman; 🌙 moon; ⭐ star; 🔥 fire/flame; 💧 water drop; "
              "🌍 globe/earth; 🪐 planet")
    + _things("sport", "⚽ soccer ball/football; 🏀 basketball; 🏈 rugby ball; ⚾ baseball; "
              "🎾 tennis ball; 🎳 bowling; 🏆 trophy/cup; 🥊 boxing glove; 🎿 skis; "
              "⛳ golf flag; 🎣 fishing rod; 🎯 dartboard/target; 🪁 kite")
    + _things("music", "🎸 guitar; 🎹 piano/keyboard; 🎺 trumpet; 🎻 violin; 🎷 saxophone; "
              "🥁 drum; 🎤 microphone; 🎧 headphones; 🔔 bell; 📻 radio")
    + _things("tools", "🔨 hammer; 🔧 wrench/spanner; 🔑 key; 🔒 padlock/lock; ✂ scissors; "
              "💡 light bulb/lamp; 🧲 magnet; 🪓 axe; ⚓ anchor; 🔋 battery; 🧭 compass")
    + _things("objects", "📕 book; ⏰ alarm clock/clock; 👓 glasses; 🎩 top hat/hat; "
              "👑 crown; 🎁 gift/present; 🎈 balloon; 📱 phone; 💻 laptop/computer; "
              "📷 camera; 📺 television/tv; 🧸 teddy bear; 💍 ring; 💎 gem/diamond; "
              "👟 sneaker/shoe; 👗 dress; 👕 shirt/tee shirt; 🎒 backpack; 🤖 robot; 👻 ghost; "
              "💀 skull; 👽 alien; ❤ heart; 🎲 dice; 🎮 game controller; 🪑 chair")
)
# fmt: on
BY_NAME = {t.name: t for t in THINGS}

# Caption templates. {thing}: article, optional size word and name ("a small cat");
# {bare}: the same without the article; {bg}: background name; {bg_a}: with its article.
TEMPLATES_ONE = (
    "{thing} on {bg_a} background",
    "{thing} in the {pos}, {bg} background",
    "{thing} on {bg_a} background, {pos}",
    "{bg_a} background with {thing} at the {pos}",
    "{bare}, {bg} background",
    "{thing} in the {pos}",
)
TEMPLATES_TWO = (
    "{thing1} and {thing2} on {bg_a} background",
    "{thing1} in the {pos1} and {thing2} in the {pos2}, {bg} background",
    "{thing1} on the {pos1} and {thing2} on the {pos2}",
    "{bg_a} background with {thing1} at the {pos1} and {thing2} at the {pos2}",
    "{bare1} and {bare2}, {bg} background",
)


def centre(position: str) -> tuple[int, int]:
    """The pixel centre (x, y) of a position word's grid cell."""
    col, row = POSITIONS[position]
    return GRID[col], GRID[row]


def read_world(path: Path) -> dict:
    """Read a ``world.json`` (a file, or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "world.json"
    return json.loads(path.read_text())


def words(text: str) -> list[str]:
    """A caption's words as the tokenizer sees them: lower case, punctuation split off."""
    return re.findall(r"[a-z0-9]+|[^\sa-z0-9]", text.lower())


def vocabulary(world: dict) -> list[str]:
    """Every word a caption can contain, in a fixed order, derived from a world dict
    (`draw.world_dict()`, or a read `world.json`)."""
    vocab: list[str] = ["a", "an"]

    def add(text: str) -> None:
        vocab.extend(w for w in words(text) if w not in vocab)

    for template in world["templates"]["one"] + world["templates"]["two"]:
        add(re.sub(r"\{[a-z_0-9]+\}", " ", template))
    for size in world["sizes"]:
        add(size)
    for bg in world["backgrounds"]:
        add(bg["name"])
    for pos in world["positions"]:
        add(pos["word"])
    for thing in world["things"]:
        for name in [thing["name"], *thing["synonyms"]]:
            add(name)
    return vocab
