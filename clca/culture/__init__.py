"""Cultures: country names and demonyms, Hofstede / Inglehart–Welzel profiles in words for prompts."""

from clca.culture.names import COUNTRIES, Country, find_country
from clca.culture.profiles import (
    HOFSTEDE_BANDS,
    CultureProfile,
    get_profile,
    hofstede_words,
    iw_words,
    list_cultures,
    resolve_country,
    slug,
)

__all__ = [
    "COUNTRIES",
    "HOFSTEDE_BANDS",
    "Country",
    "CultureProfile",
    "find_country",
    "get_profile",
    "hofstede_words",
    "iw_words",
    "list_cultures",
    "resolve_country",
    "slug",
]
