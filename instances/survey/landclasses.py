"""The default land-class table: the national land survey's working classes (第三次全国国土调查
工作分类, GB/T 21010-2017 with the survey's merged classes) -> this tool's land uses.

Each class maps to two land uses: the one it takes on **collectively owned** land (集体土地) and the
one it takes otherwise (国有土地, or ownership unknown and not collective). Only collective
construction land can be vacated, so candidate status follows from the land use
(`schema.CANDIDATE_LAND_USES`): 工业用地 0601, 采矿用地 0602, 商业服务业设施用地 05H1 and
物流仓储用地 0508 on collective land are `collective_industrial`; 农村宅基地 0702 is
`rural_settlement` (collective by definition). Every other class is never a candidate.

A survey value may be the code (`0103`, also `103` when a number column lost the leading zero) or
the name (`旱地`); a mapping file's `[land_classes]` section adds classes or overrides these.
"""

from __future__ import annotations

# code -> (name, land use on collective land, land use otherwise)
SURVEY_CLASSES: dict[str, tuple[str, str, str]] = {
    # 01 耕地 cropland
    "0101": ("水田", "farmland", "farmland"),
    "0102": ("水浇地", "farmland", "farmland"),
    "0103": ("旱地", "farmland", "farmland"),
    # 02 种植园用地 plantations (not cropland, not forest)
    "0201": ("果园", "other", "other"),
    "0202": ("茶园", "other", "other"),
    "0203": ("橡胶园", "other", "other"),
    "0204": ("其他园地", "other", "other"),
    # 03 林地 woodland
    "0301": ("乔木林地", "forest", "forest"),
    "0302": ("竹林地", "forest", "forest"),
    "0303": ("红树林地", "forest", "forest"),
    "0304": ("森林沼泽", "forest", "forest"),
    "0305": ("灌木林地", "forest", "forest"),
    "0306": ("灌丛沼泽", "forest", "forest"),
    "0307": ("其他林地", "forest", "forest"),
    # 04 草地 grassland
    "0401": ("天然牧草地", "other", "other"),
    "0402": ("沼泽草地", "other", "other"),
    "0403": ("人工牧草地", "other", "other"),
    "0404": ("其他草地", "other", "other"),
    # 05 商业服务业用地 commercial
    "05H1": ("商业服务业设施用地", "collective_industrial", "urban"),
    "0508": ("物流仓储用地", "collective_industrial", "urban"),
    # 06 工矿用地 industrial and mining
    "0601": ("工业用地", "collective_industrial", "urban"),
    "0602": ("采矿用地", "collective_industrial", "urban"),
    "0603": ("盐田", "other", "other"),
    # 07 住宅用地 residential
    "0701": ("城镇住宅用地", "urban", "urban"),
    "0702": ("农村宅基地", "rural_settlement", "rural_settlement"),
    # 08 公共管理与公共服务用地 public
    "08H1": ("机关团体新闻出版用地", "urban", "urban"),
    "08H2": ("科教文卫用地", "urban", "urban"),
    "0809": ("公用设施用地", "urban", "urban"),
    "0810": ("公园与绿地", "urban", "urban"),
    # 09 特殊用地 special
    "09": ("特殊用地", "urban", "urban"),
    # 10 交通运输用地 transport
    "1001": ("铁路用地", "urban", "urban"),
    "1002": ("轨道交通用地", "urban", "urban"),
    "1003": ("公路用地", "urban", "urban"),
    "1004": ("城镇村道路用地", "urban", "urban"),
    "1005": ("交通服务场站用地", "urban", "urban"),
    "1006": ("农村道路", "other", "other"),
    "1007": ("机场用地", "urban", "urban"),
    "1008": ("港口码头用地", "urban", "urban"),
    "1009": ("管道运输用地", "urban", "urban"),
    # 11 水域及水利设施用地 water
    "1101": ("河流水面", "water", "water"),
    "1102": ("湖泊水面", "water", "water"),
    "1103": ("水库水面", "water", "water"),
    "1104": ("坑塘水面", "water", "water"),
    "1105": ("沿海滩涂", "water", "water"),
    "1106": ("内陆滩涂", "water", "water"),
    "1107": ("沟渠", "water", "water"),
    "1108": ("沼泽地", "water", "water"),
    "1109": ("水工建筑用地", "water", "water"),
    "1110": ("冰川及永久积雪", "water", "water"),
    # 12 其他土地 other
    "1201": ("空闲地", "other", "other"),
    "1202": ("设施农用地", "other", "other"),
    "1203": ("田坎", "other", "other"),
    "1204": ("盐碱地", "other", "other"),
    "1205": ("沙地", "other", "other"),
    "1206": ("裸土地", "other", "other"),
    "1207": ("裸岩石砾地", "other", "other"),
}

# 权属性质 (ownership) values meaning collective land: the survey's codes 30-34 (集体土地所有权,
# by 村民小组 / 村 / 乡 / 其他农民集体) and 40 (集体土地使用权), or any text containing 集体.
COLLECTIVE_CODES = ("30", "31", "32", "33", "34", "40")
COLLECTIVE_WORDS = ("集体", "collective")


def class_lookup(overrides: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """Every accepted survey value (code, name) -> (land use if collective, land use otherwise).
    An override maps a code or name to one land use, whatever the ownership."""
    table: dict[str, tuple[str, str]] = {}
    for code, (name, collective, other) in SURVEY_CLASSES.items():
        table[code] = table[name] = (collective, other)
    for key, use in (overrides or {}).items():
        table[str(key).strip()] = (use, use)
    return table


def normalise_code(value: str) -> str:
    """'103' -> '0103' (a number column drops the leading zero); '103.0' -> '0103'."""
    text = value.strip()
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    if text.isdigit() and len(text) in (1, 3):
        text = "0" + text
    return text.upper() if text[:2].isdigit() else text


def is_collective(value: str) -> bool:
    text = value.strip().lower()
    if text.endswith(".0"):
        text = text[:-2]
    return text in COLLECTIVE_CODES or any(w in text for w in COLLECTIVE_WORDS)
