"""The data contract: one definition of every input table.

Readers, the Great Expectations suites and the synthetic generator all read
this module, so a change to the contract is made once, here. Codes follow the
NHS Data Dictionary so that SUS, ECDS, CSDS and GP extracts map onto the tables
with little work; `docs/data-contract.md` explains the mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["string", "date", "datetime", "integer", "float"]

SEX_CODES: tuple[str, ...] = ("1", "2", "9", "X")
"""PERSON STATED GENDER CODE: 1 male, 2 female, 9 indeterminate, X not known."""

ETHNIC_CATEGORY_CODES: tuple[str, ...] = (
    *"ABCDEFGHJKLMNPRS",
    "Z",
    "99",
)
"""ETHNIC CATEGORY (2001 census based): A-H, J-N, P, R, S; Z not stated; 99 not known."""

EMERGENCY_ADMISSION_METHODS: tuple[str, ...] = (
    "21",
    "22",
    "23",
    "24",
    "25",
    "2A",
    "2B",
    "2C",
    "2D",
    "28",
)
ELECTIVE_ADMISSION_METHODS: tuple[str, ...] = ("11", "12", "13")
MATERNITY_ADMISSION_METHODS: tuple[str, ...] = ("31", "32")
OTHER_ADMISSION_METHODS: tuple[str, ...] = ("81", "82", "83")
ADMISSION_METHOD_CODES: tuple[str, ...] = (
    ELECTIVE_ADMISSION_METHODS
    + EMERGENCY_ADMISSION_METHODS
    + MATERNITY_ADMISSION_METHODS
    + OTHER_ADMISSION_METHODS
)

DEPARTMENT_TYPE_CODES: tuple[str, ...] = ("01", "02", "03", "04")
ARRIVAL_MODE_CODES: tuple[str, ...] = ("ambulance", "other")
ACUITY_CODES: tuple[int, ...] = (1, 2, 3, 4, 5)
DISPOSAL_CODES: tuple[str, ...] = ("admitted", "discharged", "referred", "left", "died")
APPOINTMENT_MODE_CODES: tuple[str, ...] = ("face_to_face", "telephone", "home_visit", "online")
APPOINTMENT_STATUS_CODES: tuple[str, ...] = ("attended", "dna")
COMMUNITY_SERVICE_CODES: tuple[str, ...] = (
    "district_nursing",
    "community_matron",
    "urgent_community_response",
    "falls",
    "therapy",
    "intermediate_care",
    "palliative",
    "virtual_ward",
)
COMMUNITY_MODE_CODES: tuple[str, ...] = ("face_to_face", "telephone", "home_visit", "online")
DISCHARGE_DESTINATION_CODES: tuple[str, ...] = (
    "usual_residence",
    "care_home",
    "other_hospital",
    "hospice",
    "temporary_residence",
    "died",
    "not_known",
)
DISCHARGE_METHOD_CODES: tuple[str, ...] = ("1", "2", "3", "4", "5", "8", "9")
"""DISCHARGE METHOD (HOSPITAL PROVIDER SPELL): 4 = died; 5 = stillbirth; 8/9 not applicable / not known."""
OPT_OUT_TYPES: tuple[str, ...] = ("type1", "ndo")
DIAGNOSIS_STATUS_CODES: tuple[str, ...] = ("diagnosed", "resolved")
"""gp_diagnoses.status: a resolved code ends the condition until it is recorded again (register rules)."""
COMPLAINT_GROUP_CODES: tuple[str, ...] = (
    "injury",
    "mental_health",
    "self_harm",
    "alcohol_drugs",
    "chest_pain",
    "breathing",
    "abdominal",
    "falls_collapse",
    "neurological",
    "infection_fever",
    "frailty_general",
    "other",
)
"""ae_attendances.complaint_group: ECDS chief complaint (SNOMED CT) mapped to broad groups."""
REQUEST_EVENT = "request"
ASSESSMENT_EVENT = "assessment"
SERVICE_EVENT = "service"
REVIEW_EVENT = "review"
SOCIAL_CARE_EVENT_TYPES: tuple[str, ...] = (REQUEST_EVENT, ASSESSMENT_EVENT, SERVICE_EVENT, REVIEW_EVENT)
"""social_care_events.event_type: the CLD Event_Type, mapped."""
SERVICE_USER_CLIENT = "service_user"
CARER_CLIENT = "carer"
SOCIAL_CARE_CLIENT_TYPES: tuple[str, ...] = (SERVICE_USER_CLIENT, CARER_CLIENT)
"""social_care_events.client_type: the CLD Client_Type, mapped (every kind of carer is ``carer``)."""
LONG_TERM_SERVICE_TYPES: tuple[str, ...] = (
    "long_term_residential",
    "long_term_nursing",
    "long_term_community",
)
"""The long-term support service types (a care home placement, with or without nursing, or support at home)."""
REABLEMENT_SERVICE = "short_term_reablement"
"""social_care_events.service_type of short-term support to maximise independence (reablement)."""
SOCIAL_CARE_SERVICE_TYPES: tuple[str, ...] = (
    *LONG_TERM_SERVICE_TYPES,
    REABLEMENT_SERVICE,
    "short_term_other",
)
"""social_care_events.service_type: the CLD Service_Type of a service event, mapped."""
SOCIAL_CARE_SERVICE_COMPONENTS: tuple[str, ...] = (
    "home_care",
    "direct_payment",
    "supported_living",
    "day_care",
    "residential",
    "nursing",
    "reablement",
    "equipment",
    "respite",
    "other",
)
"""social_care_events.service_component: the CLD Service_Component of a service event, mapped."""
PRIMARY_SUPPORT_REASONS: tuple[str, ...] = (
    "physical_personal_care",
    "physical_access_mobility",
    "sensory",
    "memory_cognition",
    "learning_disability",
    "mental_health",
    "social_support",
    "not_known",
)
"""social_care_events.primary_support_reason: the CLD Primary_Support_Reason, mapped."""
ACCOMMODATION_STATUSES: tuple[str, ...] = (
    "own_home",
    "care_home",
    "supported_accommodation",
    "other",
    "not_known",
)
"""social_care_events.accommodation_status: the CLD Accommodation_Status, grouped."""
SOCIAL_CARE_RETURN_DUE_DAYS = 60
"""A local authority's quarterly CLD return is expected by this many days after the quarter ends;
a quarter not yet due is not missing."""
DIAGNOSIS_SEPARATOR = ";"
"""apc_spells.diagnoses: ICD-10 codes of the spell joined by this, primary first."""


@dataclass(frozen=True)
class Column:
    """One column of an input table.

    Attributes:
        name: Column name as it must appear in the file.
        type: Logical type; readers coerce to it and reject values that do not parse.
        required: Whether the column must be present in the file.
        nullable: Whether empty values are allowed (required keys are never nullable).
        codes: Allowed values, or None when the column is free text or numeric.
        description: What the column holds, for the data contract document.
        source: Where an NHS analyst finds it (SUS, ECDS, CSDS, GP extract field).
        identifier: Whether the column is an ID (person, attendance, spell): compared
            exactly across tables, never an NHS number, and may be stored as
            numbers in Parquet (other text columns may not: leading zeros).
    """

    name: str
    type: ColumnType
    required: bool = False
    nullable: bool = True
    codes: tuple[str | int, ...] | None = None
    description: str = ""
    source: str = ""
    identifier: bool = False


@dataclass(frozen=True)
class Table:
    """One input table of the data contract.

    Attributes:
        name: Table name; the file is ``<name>.parquet`` or ``<name>.csv``.
        grain: What one row is.
        columns: The columns in contract order.
        key: Column that must be unique, if any.
        event_date: The column that dates each event (None for patients).
        source: The national data set the table maps from.
    """

    name: str
    grain: str
    columns: tuple[Column, ...]
    key: str | None = None
    event_date: str | None = None
    source: str = ""
    date_pairs: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    """Pairs (earlier, later) where the later date must not precede the earlier."""
    optional: bool = False
    """Whether an extract may leave the table out (the run then goes on without it)."""

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Names of the columns a file must contain."""
        return tuple(c.name for c in self.columns if c.required)

    @property
    def column_names(self) -> tuple[str, ...]:
        """Names of every contract column, required or optional."""
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """Return the column called ``name``.

        Raises:
            KeyError: If the table has no such column.
        """
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"table {self.name!r} has no column {name!r}")


def _person_id() -> Column:
    return Column(
        "person_id",
        "string",
        required=True,
        nullable=False,
        description="Pseudonymised person identifier, the same across every table.",
        source="Pseudonymised NHS number (never the NHS number itself)",
        identifier=True,
    )


PATIENTS = Table(
    name="patients",
    grain="person",
    key="person_id",
    source="GP registration extract / PDS",
    columns=(
        _person_id(),
        Column(
            "birth_date",
            "date",
            required=True,
            nullable=False,
            description="Date of birth; month precision is enough (use the 1st).",
            source="PERSON BIRTH DATE",
        ),
        Column(
            "sex",
            "string",
            required=True,
            nullable=False,
            codes=SEX_CODES,
            description="1 male, 2 female, 9 indeterminate, X not known.",
            source="PERSON STATED GENDER CODE",
        ),
        Column(
            "ethnic_category",
            "string",
            codes=ETHNIC_CATEGORY_CODES,
            description="2001-census ethnic category; empty, Z or 99 = not known / not stated.",
            source="ETHNIC CATEGORY",
        ),
        Column(
            "lsoa_code",
            "string",
            required=True,
            nullable=False,
            description="Lower layer super output area (2011) of residence.",
            source="LSOA 2011 derived from postcode",
        ),
        Column(
            "practice_code",
            "string",
            required=True,
            nullable=False,
            description="ODS code of the GP practice of registration.",
            source="GENERAL MEDICAL PRACTICE CODE (PATIENT REGISTRATION)",
        ),
        Column("registration_start", "date", description="Start of current registration."),
        Column("registration_end", "date", description="End of registration; empty if still registered."),
        Column("date_of_death", "date", description="Date of death; empty if alive.", source="PDS / ONS"),
    ),
)

GP_DIAGNOSES = Table(
    name="gp_diagnoses",
    grain="coded diagnosis",
    event_date="event_date",
    source="GP extract (SNOMED CT clusters mapped to the condition vocabulary)",
    columns=(
        _person_id(),
        Column(
            "event_date", "date", required=True, nullable=False, description="Date the code was recorded."
        ),
        Column(
            "condition",
            "string",
            required=True,
            nullable=False,
            description="Condition vocabulary name (long-term condition or eFI deficit); see reference/conditions.csv.",
        ),
        Column("snomed_code", "string", description="Original SNOMED CT concept ID, kept for audit."),
        Column(
            "status",
            "string",
            codes=DIAGNOSIS_STATUS_CODES,
            description=(
                "diagnosed (or empty) or resolved: a resolved code (e.g. HYPRES_COD) ends the condition "
                "from its date until the condition is recorded again, as the QOF register rules count it."
            ),
            source="SNOMED CT resolved-code clusters (e.g. HYPRES_COD, DMRES_COD)",
        ),
        Column(
            "value",
            "float",
            description="Numeric value recorded with the code (e.g. an eFI or eFI2 score); empty otherwise.",
            source="GP coded event value",
        ),
    ),
)

GP_APPOINTMENTS = Table(
    name="gp_appointments",
    grain="appointment",
    event_date="appointment_date",
    source="GP appointments data (GPAD) / practice system",
    columns=(
        _person_id(),
        Column(
            "appointment_date", "date", required=True, nullable=False, description="Date of the appointment."
        ),
        Column("mode", "string", codes=APPOINTMENT_MODE_CODES, description="How the appointment took place."),
        Column(
            "status",
            "string",
            codes=APPOINTMENT_STATUS_CODES,
            description="attended or dna (did not attend).",
        ),
    ),
)

GP_MEDICATIONS = Table(
    name="gp_medications",
    grain="prescription issue",
    event_date="issue_date",
    source="GP prescribing extract",
    columns=(
        _person_id(),
        Column(
            "issue_date",
            "date",
            required=True,
            nullable=False,
            description="Date the prescription was issued.",
        ),
        Column(
            "bnf_code",
            "string",
            required=True,
            nullable=False,
            description="BNF code; chapter and section (e.g. 0205) are enough.",
        ),
    ),
)

COMMUNITY_CONTACTS = Table(
    name="community_contacts",
    grain="CSDS care contact",
    event_date="contact_date",
    source="Community Services Data Set (CSDS)",
    columns=(
        _person_id(),
        Column(
            "contact_date", "date", required=True, nullable=False, description="Date of the care contact."
        ),
        Column(
            "service",
            "string",
            required=True,
            nullable=False,
            codes=COMMUNITY_SERVICE_CODES,
            description="Community service or team type.",
            source="CSDS team type, mapped",
        ),
        Column("mode", "string", codes=COMMUNITY_MODE_CODES, description="Consultation medium."),
    ),
)

AE_ATTENDANCES = Table(
    name="ae_attendances",
    grain="ECDS attendance",
    key="attendance_id",
    event_date="arrival_datetime",
    source="Emergency Care Data Set (ECDS)",
    columns=(
        Column(
            "attendance_id",
            "string",
            required=True,
            nullable=False,
            description="Unique attendance identifier.",
            source="EMERGENCY CARE ATTENDANCE IDENTIFIER",
            identifier=True,
        ),
        _person_id(),
        Column(
            "arrival_datetime",
            "datetime",
            required=True,
            nullable=False,
            description="Arrival date and time.",
            source="EMERGENCY CARE ARRIVAL DATE / TIME",
        ),
        Column("departure_datetime", "datetime", description="Departure date and time."),
        Column(
            "department_type",
            "string",
            codes=DEPARTMENT_TYPE_CODES,
            description="01 major A&E, 02 single specialty, 03 UTC/MIU, 04 walk-in.",
            source="EMERGENCY CARE DEPARTMENT TYPE",
        ),
        Column(
            "arrival_mode",
            "string",
            codes=ARRIVAL_MODE_CODES,
            description="ambulance or other.",
            source="EMERGENCY CARE ARRIVAL MODE (SNOMED CT), mapped",
        ),
        Column(
            "acuity",
            "integer",
            codes=ACUITY_CODES,
            description="Initial acuity 1 (immediate resuscitation) to 5 (non-urgent).",
            source="EMERGENCY CARE ACUITY (SNOMED CT), mapped",
        ),
        Column(
            "disposal",
            "string",
            required=True,
            nullable=False,
            codes=DISPOSAL_CODES,
            description="Where the person went: admitted, discharged, referred, left, died.",
            source="EMERGENCY CARE DISCHARGE DESTINATION, mapped",
        ),
        Column(
            "complaint_group",
            "string",
            codes=COMPLAINT_GROUP_CODES,
            description="Chief complaint, grouped (injury, mental_health, self_harm, ...); empty if not recorded.",
            source="EMERGENCY CARE CHIEF COMPLAINT (SNOMED CT), mapped",
        ),
    ),
    date_pairs=(("arrival_datetime", "departure_datetime"),),
)

APC_SPELLS = Table(
    name="apc_spells",
    grain="SUS admitted-patient spell",
    key="spell_id",
    event_date="admission_date",
    source="SUS Admitted Patient Care (APC)",
    columns=(
        Column(
            "spell_id",
            "string",
            required=True,
            nullable=False,
            description="Unique hospital provider spell identifier.",
            source="HOSPITAL PROVIDER SPELL IDENTIFIER",
            identifier=True,
        ),
        _person_id(),
        Column("admission_date", "date", required=True, nullable=False, description="Start of the spell."),
        Column("discharge_date", "date", description="End of the spell; empty if still in hospital."),
        Column(
            "admission_method",
            "string",
            required=True,
            nullable=False,
            codes=ADMISSION_METHOD_CODES,
            description="11-13 elective; 21-25, 2A-2D, 28 emergency; 31-32 maternity; 81-83 other.",
            source="ADMISSION METHOD (HOSPITAL PROVIDER SPELL)",
        ),
        Column(
            "primary_diagnosis",
            "string",
            description="ICD-10 primary diagnosis code, upper case without the dot (I219, J441).",
            source="PRIMARY DIAGNOSIS (ICD), normalised",
        ),
        Column(
            "diagnoses",
            "string",
            description=(
                "Every ICD-10 diagnosis of the spell, primary first, normalised as primary_diagnosis and "
                "joined by ';' (I500;I10;E119); empty if not supplied."
            ),
            source="Der_Diagnosis_All (SUS+ APC), normalised",
        ),
        Column(
            "discharge_destination",
            "string",
            codes=DISCHARGE_DESTINATION_CODES,
            description="Where the person went on discharge.",
            source="DISCHARGE DESTINATION CODE, mapped",
        ),
        Column(
            "discharge_method",
            "string",
            codes=DISCHARGE_METHOD_CODES,
            description="DISCHARGE METHOD: 1-3 discharged, 4 died.",
            source="DISCHARGE METHOD (HOSPITAL PROVIDER SPELL)",
        ),
    ),
    date_pairs=(("admission_date", "discharge_date"),),
)

CASELOAD = Table(
    name="caseload",
    grain="person on a virtual-ward / proactive-care caseload",
    event_date="start_date",
    source="Local virtual-ward / proactive-care case management system",
    columns=(
        _person_id(),
        Column("team", "string", required=True, nullable=False, description="Team holding the caseload."),
        Column(
            "start_date", "date", required=True, nullable=False, description="Date taken onto the caseload."
        ),
        Column("end_date", "date", description="Date discharged from the caseload; empty if active."),
    ),
    date_pairs=(("start_date", "end_date"),),
)

OPT_OUTS = Table(
    name="opt_outs",
    grain="person with a recorded objection",
    source="Type 1 opt-out (GP) and National Data Opt-out (NDO) lists",
    columns=(
        _person_id(),
        Column(
            "type",
            "string",
            required=True,
            nullable=False,
            codes=OPT_OUT_TYPES,
            description="type1 (objection recorded at the GP) or ndo (national data opt-out).",
        ),
    ),
)

SOCIAL_CARE_EVENTS = Table(
    name="social_care_events",
    grain="Adult Social Care Client Level Data (CLD) event, latest submission kept",
    event_date="event_start_date",
    source="Adult Social Care Client Level Data (CLD), quarterly local-authority returns",
    optional=True,
    columns=(
        _person_id(),
        Column(
            "la_code",
            "string",
            required=True,
            nullable=False,
            description=(
                "ONS code of the local authority whose return the row came in "
                "(E06, E08, E09 or E10 code, e.g. E08000027)."
            ),
            source="LA_Code",
        ),
        Column(
            "reporting_period_start",
            "date",
            required=True,
            nullable=False,
            description="First day of the quarter of the return the row came in (1 Apr, 1 Jul, 1 Oct or 1 Jan).",
            source="Reporting_Period_Start_Date",
        ),
        Column(
            "event_type",
            "string",
            required=True,
            nullable=False,
            codes=SOCIAL_CARE_EVENT_TYPES,
            description="request, assessment, service or review.",
            source="Event_Type, mapped",
        ),
        Column(
            "event_start_date",
            "date",
            required=True,
            nullable=False,
            description="Date the request was made, or the assessment, service or review began.",
            source="Event_Start_Date",
        ),
        Column(
            "event_end_date",
            "date",
            description="Date the event ended; empty = still open at the end of the return's period.",
            source="Event_End_Date",
        ),
        Column(
            "client_type",
            "string",
            required=True,
            nullable=False,
            codes=SOCIAL_CARE_CLIENT_TYPES,
            description="service_user or carer.",
            source="Client_Type, mapped",
        ),
        Column(
            "service_type",
            "string",
            codes=SOCIAL_CARE_SERVICE_TYPES,
            description=(
                "Service events only: long_term_residential, long_term_nursing, long_term_community, "
                "short_term_reablement or short_term_other."
            ),
            source="Service_Type, mapped",
        ),
        Column(
            "service_component",
            "string",
            codes=SOCIAL_CARE_SERVICE_COMPONENTS,
            description="Service events only: what was provided (home_care, direct_payment, reablement, ...).",
            source="Service_Component, mapped",
        ),
        Column(
            "primary_support_reason",
            "string",
            codes=PRIMARY_SUPPORT_REASONS,
            description="Main reason the person needs support (physical_personal_care, memory_cognition, ...).",
            source="Primary_Support_Reason, mapped",
        ),
        Column(
            "accommodation_status",
            "string",
            codes=ACCOMMODATION_STATUSES,
            description="Where the person lives: own_home, care_home, supported_accommodation, other, not_known.",
            source="Accommodation_Status, grouped",
        ),
    ),
    date_pairs=(("event_start_date", "event_end_date"),),
)

SOCIAL_CARE_RETURNS = Table(
    name="social_care_returns",
    grain="CLD return received (local authority and quarter), recorded before events are deduplicated",
    source="Adult Social Care Client Level Data (CLD): the returns the events came in",
    optional=True,
    columns=(
        Column(
            "la_code",
            "string",
            required=True,
            nullable=False,
            description="ONS code of the local authority that sent the return (as in social_care_events).",
            source="LA_Code",
        ),
        Column(
            "reporting_period_start",
            "date",
            required=True,
            nullable=False,
            description="First day of the quarter the return is for (1 Apr, 1 Jul, 1 Oct or 1 Jan).",
            source="Reporting_Period_End_Date, its quarter",
        ),
        Column(
            "rows",
            "integer",
            required=True,
            nullable=False,
            description=(
                "CLD rows the return held, before each event's latest return was kept: a received "
                "return whose events all reappear in later returns still counts as received."
            ),
            source="count of CLD rows",
        ),
    ),
)

CONTRACT: dict[str, Table] = {
    t.name: t
    for t in (
        PATIENTS,
        GP_DIAGNOSES,
        GP_APPOINTMENTS,
        GP_MEDICATIONS,
        COMMUNITY_CONTACTS,
        AE_ATTENDANCES,
        APC_SPELLS,
        CASELOAD,
        OPT_OUTS,
        SOCIAL_CARE_EVENTS,
        SOCIAL_CARE_RETURNS,
    )
}
"""Every input table by name, in the order they are documented."""

EVENT_TABLES: tuple[str, ...] = tuple(
    name for name, t in CONTRACT.items() if name != "patients" and "person_id" in t.column_names
)
"""Tables whose rows belong to a person in ``patients``."""

OPTIONAL_TABLES: tuple[str, ...] = tuple(name for name, t in CONTRACT.items() if t.optional)
"""Tables an extract may leave out: the gate notes their absence and the run goes on without them."""
