"""HTTP routes of the reference gateway; each module builds one ``APIRouter``."""
