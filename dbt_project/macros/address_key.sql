{% macro address_key(country='country', region='region', city='city', postal_code='postal_code',
                     latitude='latitude', longitude='longitude', check=false) -%}
{#- The key geocoding works on: a 64-bit hash of the address as it is read (text lower-cased,
    coordinates to 1e-5 degree); one geocoding per key. check=true gives a second hash of the
    same fields in another order, which int_addresses_geocoded compares to detect a collision
    (two different addresses under one key: about n^2 / 2^65, 1e-6 for 5 M addresses). -#}
{%- set fields = [country, 'lower(' ~ region ~ ')', 'lower(' ~ city ~ ')', 'lower(' ~ postal_code ~ ')',
                  'round(' ~ latitude ~ ', 5)', 'round(' ~ longitude ~ ', 5)'] -%}
hash({{ (fields | reverse | list if check else fields) | join(', ') }})
{%- endmacro %}
