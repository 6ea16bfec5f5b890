"""Import a planner's own survey data: any vector file + a mapping file (TOML) -> an instance
GeoPackage in the format of `instances/schema.py`; township tables (CSV/XLSX) -> figures.
Imports nothing of the project outside `instances/`."""

from instances.survey.mapping import Mapping, MappingError, load_mapping
from instances.survey.reader import ImportResult, SurveyError, import_survey
from instances.survey.townships import (
    TownshipFigures,
    TownshipTableError,
    read_township_figures,
    scenario_toml,
)

__all__ = ["ImportResult", "Mapping", "MappingError", "SurveyError", "TownshipFigures",
           "TownshipTableError", "import_survey", "load_mapping", "read_township_figures",
           "scenario_toml"]
