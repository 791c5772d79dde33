-- One geocoding per distinct address (address_key), never per occurrence. Cascade, first
-- success wins: coordinates -> postal code -> city -> region -> unmatched (with a reason).
-- Rules and known failure cases: docs/geocoding.md.
with

inventors as not materialized (

    select * from {{ ref('stg_patents__inventors') }}

),

author_addresses as not materialized (

    select * from {{ ref('stg_publications__addresses') }}

),

places as not materialized (

    select * from {{ ref('stg_gazetteer__places') }}

),

place_names as not materialized (

    select * from {{ ref('stg_gazetteer__names') }}

),

regions as not materialized (

    select * from {{ ref('stg_gazetteer__regions') }}

),

postal_codes as not materialized (

    select * from {{ ref('stg_gazetteer__postal_codes') }}

),

-- the addresses of the counted documents (int_addresses_weighted's rule, macro is_counted),
-- read from the staged rows: the rows of int_addresses_weighted carry only the key
counted_addresses as (
    {% for rows in ['inventors', 'author_addresses'] %}
        select
            country,
            region,
            city,
            postal_code,
            latitude,
            longitude
        from {{ rows }}
        where {{ is_counted() }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

-- the key is built from these fields (text lower-cased), so any row of a key stands for all;
-- check_key, a second hash of the same fields in another order, tells two addresses under one
-- key (a 64-bit collision, ~1e-6 per world-scale edition) apart: such a collision stops the build
hashed_twice as (

    select
        *,
        {{ address_key() }} as address_key,
        {{ address_key(check=true) }} as check_key
    from counted_addresses

),

-- the distinct spellings first: a grouping without aggregate states, which DuckDB spills to disk
-- when it outgrows the memory limit (a per-key min() of text columns does not, and ran out of
-- memory at scale 5 of make bench: 17 M keys in 3 GB; docs/performance.md)
spellings as (

    select distinct * from hashed_twice

),

-- keys read in more than one spelling (letter case, coordinates past the 5th decimal): few
respelled_keys as (

    select address_key
    from spellings
    group by address_key
    having count(*) > 1

),

-- one row per key: a key's only spelling as it is; for a respelled key, the least value of each
-- field, as before
distinct_addresses as (

    select
        spellings.address_key,
        spellings.country,
        spellings.region,
        spellings.city,
        spellings.postal_code,
        spellings.latitude,
        spellings.longitude,
        true as is_one_address
    from spellings
    anti join respelled_keys on spellings.address_key = respelled_keys.address_key

    union all

    select
        spellings.address_key,
        min(spellings.country) as country,
        min(spellings.region) as region,
        min(spellings.city) as city,
        min(spellings.postal_code) as postal_code,
        min(spellings.latitude) as latitude,
        min(spellings.longitude) as longitude,
        min(spellings.check_key) = max(spellings.check_key) as is_one_address
    from spellings
    semi join respelled_keys on spellings.address_key = respelled_keys.address_key
    group by spellings.address_key

),

checked_addresses as (

    select * exclude (is_one_address)
    from distinct_addresses
    where
        case
            when is_one_address then true
            else error(
                'address_key ' || address_key || ' hashes two different addresses, one of them: '
                || concat_ws(' | ', country, region, city, postal_code, latitude, longitude)
            )
        end

),

known_countries as (

    select distinct country_code
    from places

),

classified as (

    select
        checked_addresses.*,
        known_countries.country_code is not null as is_known_country,
        coalesce(
            checked_addresses.latitude between -90 and 90
            and checked_addresses.longitude between -180 and 180
            -- (0, 0) is what a failed upstream geocoder writes, not a place
            and not (checked_addresses.latitude = 0 and checked_addresses.longitude = 0),
            false
        ) as has_coordinates,
        nullif(
            upper(regexp_replace(checked_addresses.postal_code, '[^0-9A-Za-z]+', '', 'g')), ''
        ) as postal_key
    from checked_addresses
    left join known_countries on checked_addresses.country = known_countries.country_code

),

to_search as (

    select *
    from classified
    where not has_coordinates and is_known_country

),

-- postal step: the full code, then its first word (GB/CA outward code, "CB2 1TN" -> "CB2")
postal_matches as (

    select
        to_search.address_key,
        postal_codes.latitude,
        postal_codes.longitude,
        postal_codes.geonameid,
        row_number() over (
            partition by to_search.address_key
            order by postal_codes.postal_key = to_search.postal_key desc
        ) as match_rank
    from to_search
    inner join postal_codes
        on
            to_search.country = postal_codes.country_code
            and postal_codes.postal_key in (
                to_search.postal_key,
                upper(
                    regexp_replace(split_part(trim(to_search.postal_code), ' ', 1), '[^0-9A-Za-z]+', '', 'g')
                )
            )
    where to_search.postal_key is not null

),

postal_located as (

    select
        address_key,
        latitude,
        longitude,
        geonameid
    from postal_matches
    where match_rank = 1

),

-- region step input: the admin1 code of a region the gazetteer knows (one UDF call per string)
region_strings as (

    select distinct
        country,
        region
    from to_search
    where region is not null

),

region_codes as (

    select
        region_strings.country,
        region_strings.region,
        regions.region_key,
        regions.admin1_code
    from region_strings
    inner join regions
        on
            region_strings.country = regions.country_code
            and stc_normalize_name(region_strings.region) = regions.region_key

),

searched as (

    select
        to_search.*,
        region_codes.region_key,
        region_codes.admin1_code as region_admin1
    from to_search
    left join region_codes
        on
            to_search.country = region_codes.country
            and to_search.region = region_codes.region

),

-- city step: the look-up runs once per distinct (country, city, region) and city string
city_lookups as (

    select distinct
        country,
        city,
        region_admin1
    from searched
    where city is not null

),

city_strings as (

    select distinct city
    from city_lookups

),

-- variants, in order of trust: the whole string, its first and last comma-separated parts
raw_variants as (

    select
        city,
        1 as variant_rank,
        stc_normalize_name(city) as city_key
    from city_strings
    union all
    select
        city,
        3 as variant_rank,
        stc_normalize_name(string_split(city, ',')[1]) as city_key
    from city_strings
    where city like '%,%'
    union all
    select
        city,
        5 as variant_rank,
        stc_normalize_name(string_split(city, ',')[-1]) as city_key
    from city_strings
    where city like '%,%'

),

-- each variant without address noise: words with digits (postal codes, "Paris 05"), CEDEX,
-- "city of", administrative suffixes (JP -shi/-ku/-ken/-gun/-machi/-cho/-mura, KR -si/-gu/-gun/
-- -dong, CN -shi/-qu/-xian, "city", "Metropolitan City", truncated "Metropolitan Cit") and
-- science parks ("Hsinchu Sci Pk")
digits_dropped as (

    select
        city,
        variant_rank + 1 as variant_rank,
        trim(
            regexp_replace(regexp_replace(city_key, '[^ ]*[0-9][^ ]*', ' ', 'g'), ' +', ' ', 'g')
        ) as city_key
    from raw_variants

),

cleaned_variants as (

    select
        city,
        variant_rank,
        trim(
            regexp_replace(
                regexp_replace(city_key, '^(city of|ville de) ', ''),
                ' (cedex|shi|ku|ken|gun|machi|cho|mura|si|gu|dong|qu|xian|city'
                || '|metropolitan( [a-z]*)?|sci pk|science park)$',
                ''
            )
        ) as city_key
    from digits_dropped

),

city_variants as (

    select
        city,
        variant_rank,
        city_key
    from raw_variants
    where city_key is not null
    union all
    select
        city,
        variant_rank,
        city_key
    from cleaned_variants
    where city_key <> ''

),

lookup_countries as (

    select distinct country
    from city_lookups

),

-- WoS and patent offices file Hong Kong and Macao under CN now and then, and the reverse
country_scopes as (

    select
        country,
        country as place_country,
        true as is_same_country
    from lookup_countries
    union all
    select
        'CN' as country,
        unnest(['HK', 'MO']) as place_country,
        false as is_same_country
    union all
    select
        unnest(['HK', 'MO']) as country,
        'CN' as place_country,
        false as is_same_country

),

city_candidates as (

    select
        city_lookups.country,
        city_lookups.city,
        city_lookups.region_admin1,
        places.geonameid,
        row_number() over (
            partition by city_lookups.country, city_lookups.city, city_lookups.region_admin1
            order by
                city_variants.variant_rank asc,
                country_scopes.is_same_country desc,
                coalesce(places.admin1_code = city_lookups.region_admin1, false) desc,
                -- a main name beats an alternate name unless the alternate's place is 10x larger
                -- ("Saint Louis" is St. Louis, MO, not Saint Louis, MI)
                places.population * (case when place_names.is_main_name then 10 else 1 end) desc,
                places.geonameid asc
        ) as candidate_rank
    from city_lookups
    inner join city_variants on city_lookups.city = city_variants.city
    inner join country_scopes on city_lookups.country = country_scopes.country
    inner join place_names on city_variants.city_key = place_names.name_key
    inner join places
        on
            place_names.geonameid = places.geonameid
            and country_scopes.place_country = places.country_code

),

city_located as (

    select
        searched.address_key,
        city_candidates.geonameid
    from searched
    inner join city_candidates
        on
            searched.country = city_candidates.country
            and searched.city = city_candidates.city
            and searched.region_admin1 is not distinct from city_candidates.region_admin1
    where city_candidates.candidate_rank = 1

),

-- region step: the region's namesake city stands for it when it is at least half as populous as
-- the region's largest place (Shizuoka prefecture -> Shizuoka city, its capital, not Hamamatsu;
-- Quebec -> Montreal, Yamanashi -> Kofu); otherwise the most populous place of the region
region_seats as (

    select
        country_code,
        admin1_code,
        max(population) as max_population,
        arg_max(geonameid, { 'population': population, 'tie': -geonameid }) as geonameid
    from places
    where admin1_code is not null
    group by country_code, admin1_code

),

searched_regions as (

    select distinct
        country,
        region_key,
        region_admin1
    from searched
    where region_admin1 is not null

),

region_namesakes as (

    select
        searched_regions.country,
        searched_regions.region_key,
        arg_max(places.geonameid, { 'population': places.population, 'tie': -places.geonameid }) as geonameid
    from searched_regions
    inner join region_seats
        on
            searched_regions.country = region_seats.country_code
            and searched_regions.region_admin1 = region_seats.admin1_code
    inner join place_names
        on
            searched_regions.region_key = place_names.name_key
            and place_names.is_main_name
    inner join places
        on
            place_names.geonameid = places.geonameid
            and searched_regions.country = places.country_code
            and searched_regions.region_admin1 = places.admin1_code
    where places.population >= 0.5 * region_seats.max_population
    group by searched_regions.country, searched_regions.region_key

),

region_located as (

    select
        searched.address_key,
        coalesce(region_namesakes.geonameid, region_seats.geonameid) as geonameid
    from searched
    inner join region_seats
        on
            searched.country = region_seats.country_code
            and searched.region_admin1 = region_seats.admin1_code
    left join region_namesakes
        on
            searched.country = region_namesakes.country
            and searched.region_key = region_namesakes.region_key

),

-- the gazetteer place of a point (given coordinates, postal-code centroids): within 5 km, the
-- one with the largest population / (1 + km)^2, so that a neighbourhood entry next door
-- (Cambridgeport) does not win over its city (Cambridge, MA); places are searched in the cells
-- of a 0.1-degree grid that a 5 km disk around the point can reach, at most the 3 x 3 cells
-- around it: 5 km is at most 0.0451 degree of latitude, and of longitude at most 0.0451 / cos of
-- the largest latitude within reach (a place farther along either axis is more than 5 km away),
-- so most points search 1 to 4 cells instead of 9 (the same candidates within 5 km)
points as (

    select
        address_key,
        latitude,
        longitude
    from classified
    where has_coordinates
    union all
    select
        address_key,
        latitude,
        longitude
    from postal_located
    where geonameid is null

),

point_reach as (

    select
        address_key,
        latitude,
        longitude,
        cast(floor(latitude * 10) as integer) as lat_cell,
        cast(floor(longitude * 10) as integer) as lon_cell,
        0.0451 as lat_margin,
        0.0451 / cos(radians(least(abs(latitude) + 0.05, 89.99))) as lon_margin
    from points

),

-- one row per reachable latitude row of cells, then per reachable cell in it (two unnests in
-- one select would pair their elements instead of crossing them)
point_rows as (

    select
        address_key,
        latitude,
        longitude,
        lon_cell,
        lat_margin,
        lon_margin,
        unnest(range(
            greatest(cast(floor((latitude - lat_margin) * 10) as integer), lat_cell - 1),
            least(cast(floor((latitude + lat_margin) * 10) as integer), lat_cell + 1) + 1
        )) as lat_cell
    from point_reach

),

point_cells as (

    select
        address_key,
        latitude,
        longitude,
        lat_margin,
        lon_margin,
        lat_cell,
        unnest(range(
            greatest(cast(floor((longitude - lon_margin) * 10) as integer), lon_cell - 1),
            least(cast(floor((longitude + lon_margin) * 10) as integer), lon_cell + 1) + 1
        )) as lon_cell
    from point_rows

),

place_cells as (

    select
        geonameid,
        latitude,
        longitude,
        population,
        cast(floor(latitude * 10) as integer) as lat_cell,
        cast(floor(longitude * 10) as integer) as lon_cell
    from places

),

point_distances as (

    select
        point_cells.address_key,
        place_cells.geonameid,
        place_cells.population,
        2 * 6371.0088 * asin(
            sqrt(
                pow(sin(radians(place_cells.latitude - point_cells.latitude) / 2), 2)
                + cos(radians(point_cells.latitude))
                * cos(radians(place_cells.latitude))
                * pow(sin(radians(place_cells.longitude - point_cells.longitude) / 2), 2)
            )
        ) as distance_km
    from point_cells
    inner join place_cells
        on
            point_cells.lat_cell = place_cells.lat_cell
            and point_cells.lon_cell = place_cells.lon_cell
    -- the box of the margins first (it holds every place within 5 km, see points): the
    -- great-circle distance is then computed for the places in it, not for every place of the
    -- reached cells (the same candidates within 5 km)
    where
        abs(place_cells.latitude - point_cells.latitude) <= point_cells.lat_margin
        and abs(place_cells.longitude - point_cells.longitude) <= point_cells.lon_margin

),

-- one aggregate instead of a window partitioned over tens of millions of candidate pairs;
-- ties: nearer first, then the smaller geonameid
nearest_places as (

    select
        address_key,
        arg_max(
            geonameid,
            {
                'score': population / pow(1 + distance_km, 2),
                'nearness': -distance_km,
                'tie': -geonameid
            }
        ) as geonameid
    from point_distances
    where distance_km <= 5
    group by address_key

),

steps as (

    select
        classified.*,
        postal_located.latitude as postal_latitude,
        postal_located.longitude as postal_longitude,
        nearest_places.geonameid as nearest_geonameid,
        postal_located.address_key is not null as by_postal_code,
        city_located.address_key is not null as by_city,
        region_located.address_key is not null as by_region,
        coalesce(postal_located.geonameid, nearest_places.geonameid) as postal_geonameid,
        coalesce(city_located.geonameid, region_located.geonameid) as named_geonameid
    from classified
    left join postal_located on classified.address_key = postal_located.address_key
    left join city_located on classified.address_key = city_located.address_key
    left join region_located on classified.address_key = region_located.address_key
    left join nearest_places on classified.address_key = nearest_places.address_key

),

cascade as (

    select
        address_key,
        country,
        region,
        city,
        postal_code,
        case
            when has_coordinates then 'coordinates'
            when by_postal_code then 'postal_code'
            when by_city then 'city'
            when by_region then 'region'
            else 'unmatched'
        end as geo_precision,
        case
            when has_coordinates then nearest_geonameid
            when by_postal_code then postal_geonameid
            else named_geonameid
        end as geonameid,
        case
            when has_coordinates then latitude
            when by_postal_code then postal_latitude
        end as point_latitude,
        case
            when has_coordinates then longitude
            when by_postal_code then postal_longitude
        end as point_longitude,
        case
            when has_coordinates or by_postal_code or by_city or by_region then null
            when country is null then 'no_country'
            when not is_known_country then 'unknown_country'
            when city is not null then 'unknown_city'
            when region is not null then 'unknown_region'
            when postal_key is not null then 'unknown_postal_code'
            when latitude is not null or longitude is not null then 'invalid_coordinates'
            else 'no_location'
        end as unmatched_reason
    from steps

),

located as (

    select
        cascade.*,
        places.name as place_name,
        places.country_code as place_country,
        coalesce(cascade.point_latitude, places.latitude) as geo_latitude,
        coalesce(cascade.point_longitude, places.longitude) as geo_longitude
    from cascade
    left join places on cascade.geonameid = places.geonameid

),

final as (

    select
        address_key,
        country,
        region,
        city,
        postal_code,
        geonameid,
        place_name,
        place_country,
        geo_latitude,
        geo_longitude,
        geo_precision,
        unmatched_reason
    from located

)

select * from final
