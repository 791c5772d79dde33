{% macro normalize_organization(expr) -%}
{#- The key under which spellings of one organization are counted together (docs/profiles.md):
    accents folded, lower case, dots and apostrophes dropped ("S.p.A." -> "spa"), any other
    punctuation a space, common Web of Science abbreviations spelled out ("Univ" -> "university"),
    the words of/the/and/for dropped, and legal forms removed from the end ("Co., Ltd.", "Inc.",
    "GmbH", "S.p.A.", ...) and from the start ("Kabushiki Kaisha"). Null when nothing is left.
    Deliberately simple: it never merges different words, so "Sony Group" and "Sony" stay apart. -#}
{%- set abbreviations = {
    'univ': 'university',
    'inst': 'institute',
    'technol': 'technology',
    'tech': 'technology',
    'natl': 'national',
    'acad': 'academy',
    'ctr': 'center',
    'centre': 'center',
    'hosp': 'hospital',
    'lab': 'laboratory',
    'labs': 'laboratories',
    'res': 'research',
    'elect': 'electric',
    'intl': 'international',
} -%}
{%- set legal_forms = [
    'co', 'corp', 'corporation', 'company', 'inc', 'incorporated', 'ltd', 'limited', 'llc', 'llp',
    'lp', 'plc', 'gmbh', 'mbh', 'ag', 'kg', 'kgaa', 'se', 'ev', 'sa', 'sas', 'sarl', 'spa', 'srl',
    'sl', 'bv', 'nv', 'ab', 'oy', 'oyj', 'a s', 'as', 'asa', 'kk', 'kabushiki kaisha', 'pty', 'pvt', 'private', 'cie',
] -%}
{%- set ns = namespace(sql="lower(strip_accents(" ~ expr ~ "))") -%}
{%- set ns.sql = "regexp_replace(" ~ ns.sql ~ ", '&', ' and ', 'g')" -%}
{%- set ns.sql = "regexp_replace(" ~ ns.sql ~ ", '[.''’`]', '', 'g')" -%}
{%- set ns.sql = "' ' || regexp_replace(" ~ ns.sql ~ ", '[^\\p{L}\\p{N}]+', ' ', 'g') || ' '" -%}
{%- for short, long in abbreviations.items() -%}
    {%- set ns.sql = "replace(" ~ ns.sql ~ ", ' " ~ short ~ " ', ' " ~ long ~ " ')" -%}
{%- endfor -%}
{#- twice: a removed word consumes the space the next one needs ("of the") -#}
{%- for _ in range(2) -%}
    {%- set ns.sql = "regexp_replace(" ~ ns.sql ~ ", ' (of|the|and|for) ', ' ', 'g')" -%}
{%- endfor -%}
{%- set ns.sql = "regexp_replace(" ~ ns.sql ~ ", '^ kabushiki kaisha ', ' ')" -%}
{%- set ns.sql = "regexp_replace(" ~ ns.sql ~ ", '( (" ~ legal_forms | join('|') ~ "))+ $', ' ')" -%}
nullif(trim(regexp_replace({{ ns.sql }}, ' +', ' ', 'g')), '')
{%- endmacro %}
