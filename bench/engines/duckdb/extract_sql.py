"""SQL (DuckDB, vectorized C++) re-implementation of the hot part of logcaster.pipeline.parse:
ts, level, service from the raw event text. Used by load path (b).

`EXTRACT_SELECT.format(src=..., received=...)` selects (id, received, ts, level, service, body)
from a relation with columns (id BIGINT, body VARCHAR).
"""

LEVEL_MAP = {
    "trace": "TRACE", "debug": "DEBUG", "dbg": "DEBUG", "info": "INFO", "information": "INFO",
    "informational": "INFO", "notice": "INFO", "warn": "WARN", "warning": "WARN", "error": "ERROR",
    "err": "ERROR", "severe": "ERROR", "fatal": "FATAL", "critical": "FATAL", "crit": "FATAL",
    "alert": "FATAL", "emerg": "FATAL", "emergency": "FATAL", "panic": "FATAL",
}
MACROS = [
    # normalize_level(): a MAP lookup in C++
    "CREATE OR REPLACE MACRO norm_level(w) AS MAP {"
    + ", ".join(f"'{k}': '{v}'" for k, v in LEVEL_MAP.items())
    + "}[lower(w)]",
    # parse_timestamp(): the fast path (minute epoch + seconds as a double, exactly like Python),
    # else a generic ISO cast; NULL if not a time
    r"""CREATE OR REPLACE MACRO iso_ts(s) AS CASE
        WHEN regexp_full_match(s, '\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?[Zz]?') THEN
          epoch(try_strptime(substr(s, 1, 10) || ' ' || substr(s, 12, 5), '%Y-%m-%d %H:%M'))
          + TRY_CAST(replace(rtrim(rtrim(substr(s, 18), 'Z'), 'z'), ',', '.') AS DOUBLE)
        ELSE epoch(TRY_CAST(s AS TIMESTAMPTZ)) END""",
]

# Per-format extraction, dispatched on the first byte like parse_event().
# fl = first line; logfmt fallbacks (level=, service=, ts=) fill what the format left empty.
EXTRACT_SELECT = r"""
WITH s AS (
  SELECT id, body, split_part(body, chr(10), 1) AS fl FROM {src}
), f AS (
  SELECT id, body, fl, left(fl, 1) AS c,
    CASE WHEN left(fl,1) = '[' THEN regexp_extract(fl,
        '^\[([A-Za-z]+)\][ \t]+(\d{{4}}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?)(?:[ \t]+([\w.-]+)/([^\s:]+))?',
        ['lvl','ts','svc','ver']) END AS sim,
    CASE WHEN left(fl,1) = '{{' THEN json_extract_string(fl, ['$.timestamp','$.time','$.ts','$."@timestamp"','$.level','$.severity','$.lvl','$.loglevel','$.service']) END AS js,
    CASE WHEN left(fl,1) = '<' THEN regexp_extract(fl,
        '^<(\d{{1,3}})>(?:1 (\S+) \S+ (\S+) |([A-Z][a-z]{{2}} [ \d]\d \d\d:\d\d:\d\d)(?: [^\s:\[]+ ([^\s:\[]+)(?:\[\d+\])?:| ([^\s:\[]+)(?:\[\d+\])?:)?)',
        ['pri','ts5424','app5424','ts3164','apph','app']) END AS sys,
    CASE WHEN left(fl,1) BETWEEN '0' AND '9' THEN regexp_extract(fl,
        '^(\d{{4}}-\d\d-\d\d(?:[ T]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?)?(?:Z|[+-]\d\d:?\d\d)?)(?:[ \t]+\[?([A-Za-z]+)\]?:?(?:\s|$))?',
        ['ts','lvl']) END AS tsl,
    CASE WHEN NOT (left(fl,1) IN ('[','{{','<') OR left(fl,1) BETWEEN '0' AND '9') THEN regexp_extract(fl,
        '^([A-Za-z]+):\s+([\w.-]+)/(v?\d[^\s:]*)', ['lvl','svc','ver']) END AS py,
    CASE WHEN left(fl,1) NOT IN ('{{','<') AND NOT left(fl,1) BETWEEN '0' AND '9'
         THEN regexp_extract(fl, '^\[?([A-Za-z]{{3,11}})\]?(?:[:|\]]|\s|$)', 1) END AS lw
  FROM s
), g AS (
  SELECT id, body, c, sim, sys, py, tsl,
    -- the level word of the format (normalized once below)
    CASE c WHEN '[' THEN coalesce(nullif(sim.lvl, ''), lw)
           WHEN '{{' THEN coalesce(js[5], js[6], js[7], js[8])
           WHEN '<' THEN NULL
           ELSE CASE WHEN tsl IS NOT NULL THEN tsl.lvl ELSE coalesce(nullif(py.lvl, ''), lw) END
    END AS lword,
    CASE WHEN c = '<' AND sys.pri <> '' THEN ['FATAL','FATAL','FATAL','ERROR','WARN','INFO','INFO','DEBUG'][(sys.pri::INT % 8) + 1] END AS prilevel,
    -- the time text of the format (parsed once below)
    CASE c WHEN '[' THEN sim.ts WHEN '{{' THEN coalesce(js[1], js[2], js[3], js[4])
           WHEN '<' THEN nullif(sys.ts5424, '') ELSE nullif(tsl.ts, '') END AS tstext,
    CASE WHEN c = '<' AND sys.ts3164 <> '' THEN
      epoch(try_strptime('{year} ' || replace(sys.ts3164, '  ', ' 0'), '%Y %b %d %H:%M:%S')) END AS ts3164,
    js[9] AS jsvc
  FROM f
), h AS (
  SELECT *, CASE WHEN c <> '<' THEN norm_level(lword) END AS nlevel FROM g
)
SELECT id, {received}::DOUBLE AS received,
  coalesce(CASE WHEN c <> '[' OR nlevel IS NOT NULL THEN iso_ts(tstext) END, ts3164,
           CASE WHEN contains(body, 'ts=') OR contains(body, 'time')
                THEN iso_ts(regexp_extract(body, '(?:^|[\s])(?:ts|time|timestamp)=([^\s,;"'']+)', 1)) END,
           {received}::DOUBLE) AS ts,
  coalesce(prilevel, nlevel, CASE WHEN contains(body, 'level=')
                        THEN norm_level(regexp_extract(body, '(?:^|[\s])level=([^\s,;"'']+)', 1)) END) AS level,
  coalesce(CASE c WHEN '[' THEN CASE WHEN nlevel IS NOT NULL THEN nullif(sim.svc, '') END
                  WHEN '{{' THEN jsvc
                  WHEN '<' THEN nullif(nullif(coalesce(nullif(sys.app5424, ''), nullif(sys.apph, ''), sys.app), ''), '-')
                  ELSE CASE WHEN tsl IS NULL AND nlevel IS NOT NULL AND py.lvl <> '' THEN py.svc END END,
           CASE WHEN contains(body, 'service=')
                THEN nullif(regexp_extract(body, '(?:^|[\s])service=([^\s,;"'']+)', 1), '') END) AS service,
  body
FROM h
"""
