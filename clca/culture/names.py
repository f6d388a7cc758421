"""Country names, aliases and demonyms used to address a culture.

The data bundle spells countries differently per source (WVS "United States", Inglehart–Welzel "USA",
Hofstede "U.S.A."; Hofstede "Korea South", WVS "South Korea"...). Every country is stored once here with a
canonical name, the adjective used in prompts ("British", "Chinese"...) and aliases (other spellings, common
names, ISO3 codes). The canonical name is the WVS wave 7 spelling where the country is in WVS (so it matches
``wvs7/country_distributions.jsonl``: "Great Britain", "Taiwan ROC", "Hong Kong SAR"...), otherwise a plain
English name. Hofstede's region rows ("Africa East", "Arab countries", "Germany East"...) are cultures too.

Hofstede's ``ctr`` column is *not* ISO3 (e.g. its "MNG" is Montenegro, ISO "MNG" is Mongolia), so it is never
used as an alias; lookups match names after normalisation (case, punctuation and spacing are ignored).
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Country(NamedTuple):
    """One culture: canonical name, ISO3 code ("" for Hofstede regions), demonym, extra aliases."""

    name: str
    iso3: str
    demonym: str
    aliases: tuple[str, ...] = ()


COUNTRIES: tuple[Country, ...] = (
    Country("Albania", "ALB", "Albanian"),
    Country("Algeria", "DZA", "Algerian"),
    Country("Andorra", "AND", "Andorran"),
    Country("Argentina", "ARG", "Argentine", ("Argentinia",)),
    Country("Armenia", "ARM", "Armenian"),
    Country("Australia", "AUS", "Australian"),
    Country("Austria", "AUT", "Austrian"),
    Country("Azerbaijan", "AZE", "Azerbaijani"),
    Country("Bangladesh", "BGD", "Bangladeshi"),
    Country("Belarus", "BLR", "Belarusian"),
    Country("Belgium", "BEL", "Belgian"),
    Country("Bolivia", "BOL", "Bolivian"),
    Country("Bosnia and Herzegovina", "BIH", "Bosnian", ("Bosnia H.", "Bosnia", "Bosnia-Herzegovina")),
    Country("Brazil", "BRA", "Brazilian"),
    Country("Bulgaria", "BGR", "Bulgarian"),
    Country("Burkina Faso", "BFA", "Burkinabè"),
    Country("Canada", "CAN", "Canadian"),
    Country("Chile", "CHL", "Chilean"),
    Country("China", "CHN", "Chinese", ("PRC", "People's Republic of China", "Mainland China")),
    Country("Colombia", "COL", "Colombian"),
    Country("Costa Rica", "CRI", "Costa Rican"),
    Country("Croatia", "HRV", "Croatian"),
    Country("Cyprus", "CYP", "Cypriot"),
    Country("Czech Republic", "CZE", "Czech", ("Czech Rep", "Czechia")),
    Country("Denmark", "DNK", "Danish"),
    Country("Dominican Republic", "DOM", "Dominican", ("Dominican Rep",)),
    Country("Ecuador", "ECU", "Ecuadorian"),
    Country("Egypt", "EGY", "Egyptian"),
    Country("El Salvador", "SLV", "Salvadoran", ("Salvador",)),
    Country("Estonia", "EST", "Estonian"),
    Country("Ethiopia", "ETH", "Ethiopian"),
    Country("Finland", "FIN", "Finnish"),
    Country("France", "FRA", "French"),
    Country("Georgia", "GEO", "Georgian"),
    Country("Germany", "DEU", "German", ("Deutschland", "Federal Republic of Germany")),
    Country("Ghana", "GHA", "Ghanaian"),
    Country(
        "Great Britain",
        "GBR",
        "British",
        ("United Kingdom", "UK", "U.K.", "Britain", "GB", "England", "United Kingdom of Great Britain"),
    ),
    Country("Greece", "GRC", "Greek"),
    Country("Guatemala", "GTM", "Guatemalan"),
    Country("Haiti", "HTI", "Haitian"),
    Country("Hong Kong SAR", "HKG", "Hong Kong", ("Hong Kong",)),
    Country("Hungary", "HUN", "Hungarian"),
    Country("Iceland", "ISL", "Icelandic"),
    Country("India", "IND", "Indian"),
    Country("Indonesia", "IDN", "Indonesian"),
    Country("Iran", "IRN", "Iranian", ("Islamic Republic of Iran",)),
    Country("Iraq", "IRQ", "Iraqi"),
    Country("Ireland", "IRL", "Irish"),
    Country("Israel", "ISR", "Israeli"),
    Country("Italy", "ITA", "Italian"),
    Country("Jamaica", "JAM", "Jamaican"),
    Country("Japan", "JPN", "Japanese"),
    Country("Jordan", "JOR", "Jordanian"),
    Country("Kazakhstan", "KAZ", "Kazakh"),
    Country("Kenya", "KEN", "Kenyan"),
    Country("Kosovo", "XKX", "Kosovar"),
    Country("Kyrgyzstan", "KGZ", "Kyrgyz", ("Kyrgyz Rep", "Kyrgyz Republic")),
    Country("Latvia", "LVA", "Latvian"),
    Country("Lebanon", "LBN", "Lebanese"),
    Country("Libya", "LBY", "Libyan"),
    Country("Lithuania", "LTU", "Lithuanian"),
    Country("Luxembourg", "LUX", "Luxembourgish"),
    Country("Macao SAR", "MAC", "Macanese", ("Macau SAR", "Macau", "Macao")),
    Country("Malaysia", "MYS", "Malaysian"),
    Country("Maldives", "MDV", "Maldivian"),
    Country("Mali", "MLI", "Malian"),
    Country("Malta", "MLT", "Maltese"),
    Country("Mexico", "MEX", "Mexican"),
    Country("Moldova", "MDA", "Moldovan"),
    Country("Mongolia", "MNG", "Mongolian"),
    Country("Montenegro", "MNE", "Montenegrin"),
    Country("Morocco", "MAR", "Moroccan"),
    Country("Myanmar", "MMR", "Burmese", ("Burma",)),
    Country("Netherlands", "NLD", "Dutch", ("The Netherlands", "Holland")),
    Country("New Zealand", "NZL", "New Zealand"),
    Country("Nicaragua", "NIC", "Nicaraguan"),
    Country("Nigeria", "NGA", "Nigerian"),
    Country(
        "Northern Ireland", "NIR", "Northern Irish"
    ),  # WVS code 909; IVS/EVS keep it apart from Great Britain
    Country("North Macedonia", "MKD", "Macedonian", ("N.Macedonia", "Macedonia Rep", "Macedonia")),
    Country("Norway", "NOR", "Norwegian"),
    Country("Pakistan", "PAK", "Pakistani"),
    Country("Palestine", "PSE", "Palestinian"),
    Country("Panama", "PAN", "Panamanian"),
    Country("Peru", "PER", "Peruvian"),
    Country("Philippines", "PHL", "Filipino", ("The Philippines",)),
    Country("Poland", "POL", "Polish"),
    Country("Portugal", "PRT", "Portuguese"),
    Country("Puerto Rico", "PRI", "Puerto Rican"),
    Country("Qatar", "QAT", "Qatari"),
    Country("Romania", "ROU", "Romanian"),
    Country("Russia", "RUS", "Russian", ("Russian Federation",)),
    Country("Rwanda", "RWA", "Rwandan"),
    Country("Saudi Arabia", "SAU", "Saudi"),
    Country("Serbia", "SRB", "Serbian"),
    Country("Singapore", "SGP", "Singaporean"),
    Country("Slovakia", "SVK", "Slovak", ("Slovak Rep", "Slovak Republic")),
    Country("Slovenia", "SVN", "Slovenian"),
    Country("South Africa", "ZAF", "South African"),
    Country("South Korea", "KOR", "South Korean", ("Korea South", "Korea", "Republic of Korea")),
    Country("Spain", "ESP", "Spanish"),
    Country("Suriname", "SUR", "Surinamese"),
    Country("Sweden", "SWE", "Swedish"),
    Country("Switzerland", "CHE", "Swiss"),
    Country("Taiwan ROC", "TWN", "Taiwanese", ("Taiwan",)),
    Country("Tajikistan", "TJK", "Tajik"),
    Country("Tanzania", "TZA", "Tanzanian"),
    Country("Thailand", "THA", "Thai"),
    Country("Trinidad and Tobago", "TTO", "Trinidadian", ("Trinidad",)),
    Country("Tunisia", "TUN", "Tunisian"),
    Country("Turkey", "TUR", "Turkish", ("Türkiye", "Turkiye")),
    Country("Uganda", "UGA", "Ugandan"),
    Country("Ukraine", "UKR", "Ukrainian"),
    Country(
        "United States",
        "USA",
        "American",
        ("USA", "U.S.A.", "US", "U.S.", "United States of America", "America"),
    ),
    Country("Uruguay", "URY", "Uruguayan"),
    Country("Uzbekistan", "UZB", "Uzbek"),
    Country("Venezuela", "VEN", "Venezuelan"),
    Country("Vietnam", "VNM", "Vietnamese", ("Viet Nam",)),
    Country("Yemen", "YEM", "Yemeni"),
    Country("Zambia", "ZMB", "Zambian"),
    Country("Zimbabwe", "ZWE", "Zimbabwean"),
    # Hofstede's regions and sub-national cultures (no ISO code).
    Country("Africa East", "", "East African", ("East Africa",)),
    Country("Africa West", "", "West African", ("West Africa",)),
    Country("Arab countries", "", "Arab", ("Arab world",)),
    Country("Belgium French", "", "French-speaking Belgian", ("Wallonia",)),
    Country("Belgium Netherl", "", "Flemish", ("Flanders", "Belgium Dutch")),
    Country("Canada French", "", "French Canadian", ("Quebec",)),
    Country("Germany East", "", "East German", ("East Germany",)),
    Country("South Africa white", "", "white South African"),
    Country("Switzerland French", "", "French-speaking Swiss"),
    Country("Switzerland German", "", "German-speaking Swiss"),
)


def normalise(name: str) -> str:
    """Lower-case ``name`` and drop everything but letters and digits ("U.S.A." -> "usa")."""
    return re.sub(r"[^0-9a-z]+", "", name.casefold().replace("&", "and"))


def _build_index() -> dict[str, Country]:
    index: dict[str, Country] = {}
    for c in COUNTRIES:
        keys = [c.name, *c.aliases, c.demonym]
        if c.iso3:
            keys.append(c.iso3)
        for key in keys:
            index.setdefault(normalise(key), c)
    return index


_INDEX = _build_index()


def find_country(name: str) -> Country | None:
    """The :class:`Country` for a name, alias, demonym or ISO3 code; ``None`` when unknown."""
    return _INDEX.get(normalise(name))


def all_names() -> list[str]:
    """Every spelling the lookup accepts (for close-match suggestions)."""
    out: list[str] = []
    for c in COUNTRIES:
        out.extend([c.name, *c.aliases])
    return out
