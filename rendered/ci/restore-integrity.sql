-- Restore drill integrity check (issue 15; docs/resilience.md): on the restored copy, for every
-- table of the newest backup-time manifest (integrity-record.sql), the recorded row count and
-- checksum beside the ones recomputed now. One JSON object on stdout: {"tables": [...]}.
CREATE FUNCTION pg_temp.table_checksum(tbl text, OUT row_count bigint, OUT checksum text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  EXECUTE format('SELECT count(*), coalesce(md5(string_agg(h, '''' ORDER BY h)), md5('''')) FROM (SELECT md5(t::text) AS h FROM %s t) s', tbl)
    INTO row_count, checksum;
END
$$;
WITH latest AS (
  SELECT * FROM companyos_integrity.manifest
  WHERE recorded_at = (SELECT max(recorded_at) FROM companyos_integrity.manifest)
), checked AS (
  SELECT l.table_name, l.recorded_at, l.row_count AS recorded_rows, l.checksum AS recorded_checksum,
         (pg_temp.table_checksum(l.table_name)).*
  FROM latest l
)
SELECT json_build_object('tables', coalesce(json_agg(json_build_object(
  'table', table_name, 'recorded_at', recorded_at,
  'recorded_rows', recorded_rows, 'restored_rows', row_count,
  'recorded_checksum', recorded_checksum, 'restored_checksum', checksum
) ORDER BY table_name), '[]'::json))
FROM checked;
