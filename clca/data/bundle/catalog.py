"""What the data bundle is made of: the pinned public sources, their terms of use, and the built files.

:data:`SOURCES` pins every source file (GitHub raw URL at a full commit hash, sha256, size, mirror path);
:data:`TERMS` says how each group of sources may be used and cited; :data:`PRODUCTS` lists the bundle's
files (named by :class:`clca.data.layout.DataBundle`) and the ways to build each (:class:`Recipe`: the
sources it needs and the builder). The Inglehart–Welzel map file has two: the official 2022 points when the
user supplies them, else the IVS edition from open-numbers' pinned aggregates (:mod:`clca.data.editions`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clca.data.bundle.builders import (
    country_distributions_jsonl,
    env_subsets_json,
    hofstede_csv,
    inglehart_welzel_csv,
    ivs_map_points_csv,
    verbatim,
)
from clca.data.editions import IVS_COMMIT, IVS_SOURCES, IVS_WAVE7_YEARS, OFFICIAL_SHA256, OFFICIAL_SOURCE
from clca.data.layout import DataBundle

# --------------------------------------------------------------------------------------------------------
# Terms of use


class Terms(BaseModel):
    """The terms of use of one group of sources, printed once per pull and written into the bundle."""

    model_config = ConfigDict(frozen=True)

    name: str
    licence: str
    summary: str
    citations: tuple[str, ...]


WVS_CITATION = (
    "Haerpfer, C., Inglehart, R., Moreno, A., Welzel, C., Kizilova, K., Diez-Medrano J., M. Lagos, "
    "P. Norris, E. Ponarin & B. Puranen (eds.). 2022. World Values Survey: Round Seven - Country-Pooled "
    "Datafile Version 5.0. Madrid, Spain & Vienna, Austria: JD Systems Institute & WVSA Secretariat. "
    "doi:10.14281/18241.20"
)
SIMLLM_CITATION = (
    "Cao, Y., Liu, H., Arora, A., Augenstein, I., Röttger, P. & Hershcovich, D. 2025. Specializing Large "
    "Language Models to Simulate Survey Response Distributions for Global Populations. NAACL 2025."
)
WVB_CITATION = (
    "Zhao, W., Mondal, D., Tandon, N., Dillion, D., Gray, K. & Gu, Y. 2024. WorldValuesBench: A Large-Scale "
    "Benchmark Dataset for Multi-Cultural Value Awareness of Language Models. LREC-COLING 2024, "
    "pages 17696-17706."
)
SOTOPIA_CITATION = (
    "Zhou, X., Zhu, H., Mathur, L., Zhang, R., Yu, H., Qi, Z., Morency, L.-P., Bisk, Y., Fried, D., "
    "Neubig, G. & Sap, M. 2024. SOTOPIA: Interactive Evaluation for Social Intelligence in Language Agents. "
    "ICLR 2024."
)
SOTOPIA_PI_CITATION = (
    "Wang, R., Yu, H., Zhang, W., Qi, Z., Sap, M., Neubig, G., Bisk, Y. & Zhu, H. 2024. SOTOPIA-pi: "
    "Interactive Learning of Socially Intelligent Language Agents. ACL 2024."
)
HOFSTEDE_CITATION = (
    "Hofstede, G., Hofstede, G. J. & Minkov, M. 2010. Cultures and Organizations: Software of the Mind, "
    "3rd ed. McGraw-Hill. Data: geerthofstede.com, dimension data matrix, "
    "6-dimensions-for-website-2015-08-16.csv."
)
IW_CITATION = (
    "World Values Survey Association. 2023. The Inglehart-Welzel World Cultural Map - World Values "
    "Survey 7 (2023 version, data 2017-2022). www.worldvaluessurvey.org."
)
EVS_CITATION = (
    "EVS. 2020. European Values Study 2017: Integrated Dataset (EVS 2017). GESIS Data Archive, Cologne. ZA7500 "
    "Data file Version 4.0.0, doi:10.4232/1.13560"
)
JOINT_CITATION = (
    "EVS/WVS. 2020. European Values Study and World Values Survey: Joint EVS/WVS 2017-2021 Dataset "
    "(Joint EVS/WVS). JD Systems Institute & WVSA. Dataset Version 1.0.0, doi:10.14281/18241.2 (cite the "
    "version you use; later versions have their own DOIs)"
)
IVS_DDF_CITATION = (
    "open-numbers. ddf--open_numbers--integrated_values_surveys_indicators: Integrated Values Surveys "
    f"(WVS + EVS) country-year aggregates in DDF, GitHub, commit {IVS_COMMIT}."
)

TERMS: dict[str, Terms] = {
    "wvs": Terms(
        name="World Values Survey wave 7 aggregates (SimLLMCultureDist) and WorldValuesBench metadata",
        licence="WVS terms: free for non-profit use with citation",
        summary=(
            "WVS data may be used for non-profit purposes only and must be cited; respondent-level WVS "
            "data may not be redistributed (none is fetched)."
        ),
        citations=(WVS_CITATION, SIMLLM_CITATION, WVB_CITATION),
    ),
    "sotopia": Terms(
        name="Sotopia scenarios, characters, relationships and combinations",
        licence="CC-BY-SA-4.0",
        summary="Attribute Sotopia; derived scenario files you publish must carry the same licence.",
        citations=(SOTOPIA_CITATION,),
    ),
    "sotopia_pi": Terms(
        name="Sotopia-pi inspirational prompts and environment subsets",
        licence="Apache-2.0",
        summary="Keep the licence and attribution when redistributing.",
        citations=(SOTOPIA_PI_CITATION, SOTOPIA_CITATION),
    ),
    "hofstede": Terms(
        name="Hofstede's six dimensions (2015 release)",
        licence="free for research; cite the source",
        summary="Cite Hofstede's dimension data when you use the scores.",
        citations=(HOFSTEDE_CITATION,),
    ),
    "inglehart_welzel": Terms(
        name="Inglehart-Welzel cultural map points (2022), optional, supplied by the user",
        licence="WVS terms: free for non-profit use with citation",
        summary="Cite the World Values Survey Association's cultural map.",
        citations=(IW_CITATION, WVS_CITATION),
    ),
    "ivs": Terms(
        name="Integrated Values Surveys (WVS + EVS) country-year aggregates (open-numbers DDF)",
        licence="WVS and EVS terms: free for non-profit use with citation",
        summary=(
            "WVS and EVS data may be used for non-profit purposes only and must be cited, with the "
            "open-numbers repository the aggregates come from; no respondent-level data is fetched."
        ),
        citations=(WVS_CITATION, EVS_CITATION, JOINT_CITATION, IVS_DDF_CITATION),
    ),
}


# --------------------------------------------------------------------------------------------------------
# The sources table


class Source(BaseModel):
    """One source file: where it is published (pinned), its size and sha256, its terms, its mirror path."""

    model_config = ConfigDict(frozen=True)

    key: str
    url: str | None = Field(description="pinned public download URL; None when no pinned copy is known")
    mirror_path: str = Field(description="the file's path relative to a --mirror base")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    terms: str
    repo: str | None = None
    commit: str | None = Field(default=None, pattern=r"^[0-9a-f]{40}$")
    path: str | None = None
    note: str = ""
    accept: Literal["sha256", "format"] = Field(
        default="sha256",
        description="sha256: only the pinned bytes; format: any file its product's builder accepts (the "
        "user's own copy of a file with no pinned public copy; its sha256 is recorded as given)",
    )


def github_file(
    key: str, repo: str, commit: str, path: str, *, sha256: str, size: int, terms: str, note: str = ""
) -> Source:
    """A file of a public GitHub repository at a full commit hash (raw URL; mirror ``repo/commit/path``)."""
    return Source(
        key=key,
        url=f"https://raw.githubusercontent.com/{repo}/{commit}/{path}",
        mirror_path=f"{repo}/{commit}/{path}",
        sha256=sha256,
        size=size,
        terms=terms,
        repo=repo,
        commit=commit,
        path=path,
        note=note,
    )


def unpinned_file(
    key: str,
    filename: str,
    *,
    sha256: str,
    size: int,
    terms: str,
    note: str,
    accept: Literal["sha256", "format"] = "sha256",
) -> Source:
    """A source with no pinned public copy: only a mirror or ``--source KEY=PATH`` can supply it."""
    return Source(
        key=key,
        url=None,
        mirror_path=f"_unpinned/{key}/{filename}",
        sha256=sha256,
        size=size,
        terms=terms,
        note=note,
        accept=accept,
    )


WVB_REPO, WVB_COMMIT = "Demon702/WorldValuesBench", "635db7455e2c656978929210eba984bc09ddd659"
SIMLLM_REPO, SIMLLM_COMMIT = "yongcaoplus/SimLLMCultureDist", "402ee0b350983fd665e6668d770c7a687c5669a6"
SOTOPIA_SPACE_REPO, SOTOPIA_SPACE_COMMIT = (
    "sotopia-lab/sotopia-space",
    "12c13d807a62ce523ff87afefacb307b277b1604",
)
SOTOPIA_PI_REPO, SOTOPIA_PI_COMMIT = "sotopia-lab/sotopia-pi", "245fa7bbfc229a1e0f1aa3e79fa3cd26cad7b3bd"
HOFSTEDE_REPO, HOFSTEDE_COMMIT = "HoaMacDanh/GEO", "2f17b10973b940709e575f5d7ce37572399570b4"
IVS_REPO = "open-numbers/ddf--open_numbers--integrated_values_surveys_indicators"

#: Every source file of the bundle. Each sha256 and size was computed from the file at the pinned commit.
SOURCES: tuple[Source, ...] = (
    github_file(
        "wvb_question_metadata",
        WVB_REPO,
        WVB_COMMIT,
        "dataset_construction/question_metadata.json",
        sha256="338b49bfb22bbf45d3c13d8fd16a9ba307a632f820b2f0ff3f1eba996de1ed48",
        size=109116,
        terms="wvs",
    ),
    github_file(
        "wvb_codebook",
        WVB_REPO,
        WVB_COMMIT,
        "dataset_construction/codebook.json",
        sha256="28636cdc6bf0103895ab2faa09c391fdee2da52505f5362ee47f90223845e85e",
        size=733382,
        terms="wvs",
    ),
    github_file(
        "wvb_answer_adjustment",
        WVB_REPO,
        WVB_COMMIT,
        "dataset_construction/answer_adjustment.json",
        sha256="4c26cbb279207811f2a19d180163bef1c0092cf8be39e70a71e0eddff9a08467",
        size=621,
        terms="wvs",
    ),
    github_file(
        "simllm_train",
        SIMLLM_REPO,
        SIMLLM_COMMIT,
        "llama_recipes/datasets/custom_dataset.json",
        sha256="54add2f95348beae41ff798ba94181639dab0622c0b8e791caa8443fc5ee5018",
        size=3474004,
        terms="wvs",
        note="WVS7 v5.0 answer shares per country, Q1-Q163 (the project's training split)",
    ),
    github_file(
        "simllm_valid",
        SIMLLM_REPO,
        SIMLLM_COMMIT,
        "dataset/sft_wvs_valid.json",
        sha256="a52d446a1d3bffa977d55cc099e2bbe8eb2aec6d0fa0cf3afa965435729a8ad9",
        size=1402737,
        terms="wvs",
        note="WVS7 v5.0 answer shares per country, Q164-Q198 (the project's validation split)",
    ),
    github_file(
        "sotopia_environment_profiles",
        SOTOPIA_SPACE_REPO,
        SOTOPIA_SPACE_COMMIT,
        "profiles/environment_profiles.jsonl",
        sha256="b75de0c5b1b951ebeb66eb223ab3eec996caa890263a0bcd48ce2d9f4ce3e109",
        size=94093,
        terms="sotopia",
    ),
    github_file(
        "sotopia_agent_profiles",
        SOTOPIA_SPACE_REPO,
        SOTOPIA_SPACE_COMMIT,
        "profiles/agent_profiles.jsonl",
        sha256="1f2f74c07fd9105242c7f2a951d5378f52cd03a6df113f6020edb90d31202f1b",
        size=32119,
        terms="sotopia",
    ),
    github_file(
        "sotopia_relationship_profiles",
        SOTOPIA_SPACE_REPO,
        SOTOPIA_SPACE_COMMIT,
        "profiles/relationship_profiles.jsonl",
        sha256="33cd50cc1fbe93b8b7010ce5047e767e3a1ead421e791fee2bb1b9b2073327a2",
        size=65223,
        terms="sotopia",
    ),
    github_file(
        "sotopia_env_agent_combo_storages",
        SOTOPIA_SPACE_REPO,
        SOTOPIA_SPACE_COMMIT,
        "profiles/env_agent_combo_storages.jsonl",
        sha256="46d5858322e8c8266c4aabc45e3ca5a6d8f91df0fc6f167b10adb5b1477a4815",
        size=71100,
        terms="sotopia",
    ),
    github_file(
        "sotopia_pi_used_prompt",
        SOTOPIA_PI_REPO,
        SOTOPIA_PI_COMMIT,
        "data_generate/env_files/used_prompt.csv",
        sha256="23a54f58547cc27ea77146ce25c45bbe3535401cd04bc435b3d3e1825caebef1",
        size=81690,
        terms="sotopia_pi",
    ),
    github_file(
        "sotopia_pi_used_env",
        SOTOPIA_PI_REPO,
        SOTOPIA_PI_COMMIT,
        "data_generate/env_files/used_env.json",
        sha256="593d5fc1dae6826030d88ce0734e17cf87c39e1efc37e253e9658f390e6fe826",
        size=19747,
        terms="sotopia_pi",
    ),
    github_file(
        "hofstede_2015",
        HOFSTEDE_REPO,
        HOFSTEDE_COMMIT,
        "6-dimensions-for-website-2015-08-16.csv",
        sha256="71bff58cf610ec44b870d5aa4b06bb36e3a573860d513ff802488764d6e029a6",
        size=4267,
        terms="hofstede",
        note=(
            "a public GitHub copy (first upload, unedited) of geerthofstede.com's "
            "6-dimensions-for-website-2015-08-16.csv; geerthofstede.com itself has no pinned version"
        ),
    ),
    github_file(
        "ivs_tradagg",
        IVS_REPO,
        IVS_COMMIT,
        "ddf--datapoints--tradagg--by--geo--year.csv",
        sha256="3443fa4d20839fdbaef0b6d42cdeb72dd89cebbe4e68357a972aa2f10ee4771e",
        size=13712,
        terms="ivs",
        note="traditional (-) vs secular-rational (+) values per country and survey year (WVS + EVS)",
    ),
    github_file(
        "ivs_survsagg",
        IVS_REPO,
        IVS_COMMIT,
        "ddf--datapoints--survsagg--by--geo--year.csv",
        sha256="0a64c75de5492fc7552aa38b7ab993afd5e30b5b7a864e47e3bff242a136e00b",
        size=13665,
        terms="ivs",
        note="survival (+) vs self-expression (-) values per country and survey year: the map's sign flipped",
    ),
    github_file(
        "ivs_geo_entities",
        IVS_REPO,
        IVS_COMMIT,
        "ddf--entities--geo--country.csv",
        sha256="dc27b46055207496e4a98e80eebcb8a9b89999da493fd0d89eb913c36bbcd432",
        size=2237,
        terms="ivs",
        note="the geo keys' country names",
    ),
    unpinned_file(
        OFFICIAL_SOURCE,
        "inglehart_welzel_2022.csv",
        sha256=OFFICIAL_SHA256,
        size=3043,
        terms="inglehart_welzel",
        accept="format",
        note=(
            "optional: the World Values Survey Association's official 2022 map points have no pinned public "
            "copy; supply them with --source inglehart_welzel_2022=PATH to use them instead of the IVS edition"
        ),
    ),
)


#: open-numbers' IVS geo keys -> ISO3 (the WVS codes where ISO has none: Northern Ireland NIR, Kosovo XKX).
#: Every key of the pinned ``ddf--entities--geo--country.csv`` but ``northern_cyprus`` (no code; never in the
#: window). Old EVS rounds spell some countries twice (``russia`` / ``russian_federation``): both keys map to
#: the one code, and the builder refuses a window in which both occur.
IVS_GEO_ISO3: dict[str, str] = {
    "albania": "ALB",
    "algeria": "DZA",
    "andorra": "AND",
    "argentina": "ARG",
    "armenia": "ARM",
    "australia": "AUS",
    "austria": "AUT",
    "azerbaijan": "AZE",
    "bangladesh": "BGD",
    "belarus": "BLR",
    "belgium": "BEL",
    "bolivia": "BOL",
    "bosnia_and_herzegovina": "BIH",
    "bosnia_herzegovina": "BIH",
    "brazil": "BRA",
    "bulgaria": "BGR",
    "burkina_faso": "BFA",
    "canada": "CAN",
    "chile": "CHL",
    "china": "CHN",
    "colombia": "COL",
    "croatia": "HRV",
    "cyprus": "CYP",
    "czechia": "CZE",
    "denmark": "DNK",
    "dominican_republic": "DOM",
    "ecuador": "ECU",
    "egypt": "EGY",
    "estonia": "EST",
    "ethiopia": "ETH",
    "finland": "FIN",
    "france": "FRA",
    "georgia": "GEO",
    "germany": "DEU",
    "germany_west": "DEU",
    "ghana": "GHA",
    "great_britain": "GBR",
    "greece": "GRC",
    "guatemala": "GTM",
    "haiti": "HTI",
    "hong_kong_sar": "HKG",
    "hungary": "HUN",
    "iceland": "ISL",
    "india": "IND",
    "indonesia": "IDN",
    "iran": "IRN",
    "iraq": "IRQ",
    "ireland": "IRL",
    "israel": "ISR",
    "italy": "ITA",
    "japan": "JPN",
    "jordan": "JOR",
    "kazakhstan": "KAZ",
    "kenya": "KEN",
    "kosovo": "XKX",
    "kyrgyzstan": "KGZ",
    "latvia": "LVA",
    "lebanon": "LBN",
    "libya": "LBY",
    "lithuania": "LTU",
    "luxembourg": "LUX",
    "macedonia": "MKD",
    "malaysia": "MYS",
    "maldives": "MDV",
    "mali": "MLI",
    "malta": "MLT",
    "mexico": "MEX",
    "moldova": "MDA",
    "moldova_rep_of": "MDA",
    "mongolia": "MNG",
    "montenegro": "MNE",
    "montenegro_rep_of": "MNE",
    "morocco": "MAR",
    "myanmar": "MMR",
    "netherlands": "NLD",
    "new_zealand": "NZL",
    "nicaragua": "NIC",
    "nigeria": "NGA",
    "north_macedonia": "MKD",
    "northern_ireland": "NIR",
    "norway": "NOR",
    "pakistan": "PAK",
    "palestine": "PSE",
    "peru": "PER",
    "philippines": "PHL",
    "poland": "POL",
    "portugal": "PRT",
    "puerto_rico": "PRI",
    "romania": "ROU",
    "russia": "RUS",
    "russian_federation": "RUS",
    "rwanda": "RWA",
    "serbia": "SRB",
    "singapore": "SGP",
    "slovak_republic": "SVK",
    "slovakia": "SVK",
    "slovenia": "SVN",
    "south_africa": "ZAF",
    "south_korea": "KOR",
    "spain": "ESP",
    "sweden": "SWE",
    "switzerland": "CHE",
    "taiwan_roc": "TWN",
    "tanzania": "TZA",
    "thailand": "THA",
    "trinidad_and_tobago": "TTO",
    "tunisia": "TUN",
    "turkey": "TUR",
    "uganda": "UGA",
    "ukraine": "UKR",
    "united_states": "USA",
    "uruguay": "URY",
    "venezuela": "VEN",
    "vietnam": "VNM",
    "yemen": "YEM",
    "zambia": "ZMB",
    "zimbabwe": "ZWE",
}


def terms_text(sources: Sequence[Source]) -> list[str]:
    """The terms of the given sources, one paragraph per terms group (in first-use order)."""
    out: list[str] = []
    seen: list[str] = []
    for s in sources:
        if s.terms not in seen:
            seen.append(s.terms)
    for key in seen:
        t = TERMS[key]
        keys = ", ".join(s.key for s in sources if s.terms == key)
        out.append(f"- {t.name} ({keys}): {t.licence}. {t.summary}")
        out.extend(f"    cite: {c}" for c in t.citations)
    return out


# --------------------------------------------------------------------------------------------------------
# The bundle's files


@dataclass(frozen=True)
class Recipe:
    """One way to build a file: the sources it needs and the builder (called with their bytes, in order)."""

    needs: tuple[str, ...]
    build: Callable[..., bytes]


@dataclass(frozen=True)
class Product:
    """One file of the bundle and its recipes, in order of preference: the pull builds the first whose
    sources it has (the user's official map points over the IVS edition)."""

    file: str
    recipes: tuple[Recipe, ...]

    @property
    def needs(self) -> tuple[str, ...]:
        """Every source some recipe of this file needs (first-use order)."""
        return tuple(dict.fromkeys(k for r in self.recipes for k in r.needs))


def product(file: str, needs: tuple[str, ...], build: Callable[..., bytes]) -> Product:
    """A file with one recipe."""
    return Product(file, (Recipe(needs, build),))


#: the map points built from the IVS aggregates: latest year in the wave-7 window, ISO3 from the table above
ivs_map_points = partial(ivs_map_points_csv, iso3=IVS_GEO_ISO3, years=IVS_WAVE7_YEARS)

#: The bundle's files, in the order they are built.
PRODUCTS: tuple[Product, ...] = (
    product(DataBundle.WVS_METADATA, ("wvb_question_metadata",), verbatim),
    product(DataBundle.WVS_CODEBOOK, ("wvb_codebook",), verbatim),
    product(DataBundle.WVS_ANSWER_ADJUSTMENT, ("wvb_answer_adjustment",), verbatim),
    product(
        DataBundle.WVS_DISTRIBUTIONS,
        ("simllm_train", "simllm_valid", "wvb_codebook", "wvb_question_metadata"),
        country_distributions_jsonl,
    ),
    product(DataBundle.SOTOPIA_ENVIRONMENTS, ("sotopia_environment_profiles",), verbatim),
    product(DataBundle.SOTOPIA_AGENTS, ("sotopia_agent_profiles",), verbatim),
    product(DataBundle.SOTOPIA_RELATIONSHIPS, ("sotopia_relationship_profiles",), verbatim),
    product(DataBundle.SOTOPIA_COMBOS, ("sotopia_env_agent_combo_storages",), verbatim),
    product(DataBundle.SOTOPIA_ENV_SUBSETS, ("sotopia_pi_used_env",), env_subsets_json),
    product(DataBundle.SOTOPIA_NORMS, ("sotopia_pi_used_prompt",), verbatim),
    product(DataBundle.HOFSTEDE, ("hofstede_2015",), hofstede_csv),
    Product(
        DataBundle.INGLEHART_WELZEL,
        (Recipe((OFFICIAL_SOURCE,), inglehart_welzel_csv), Recipe(IVS_SOURCES, ivs_map_points)),
    ),
)
