-- Backup-time integrity manifest (issue 15; docs/resilience.md): run against each production
-- database just before the daily AWS Backup copy rule. In one REPEATABLE READ transaction it
-- reads every application table's row count and an order-independent checksum and writes
-- them to companyos_integrity.manifest, so the manifest and the rows it describes are in the
-- same recovery point; the restore drill (restore-integrity.sql) recomputes both on the copy.
BEGIN ISOLATION LEVEL REPEATABLE READ;
CREATE SCHEMA IF NOT EXISTS companyos_integrity;
CREATE TABLE IF NOT EXISTS companyos_integrity.manifest (
  recorded_at timestamptz NOT NULL,
  table_name text NOT NULL,
  row_count bigint NOT NULL,
  checksum text NOT NULL,
  PRIMARY KEY (recorded_at, table_name)
);
CREATE OR REPLACE FUNCTION companyos_integrity.table_checksum(tbl regclass, OUT row_count bigint, OUT checksum text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  EXECUTE format('SELECT count(*), coalesce(md5(string_agg(h, '''' ORDER BY h)), md5('''')) FROM (SELECT md5(t::text) AS h FROM %s t) s', tbl)
    INTO row_count, checksum;
END
$$;
INSERT INTO companyos_integrity.manifest (recorded_at, table_name, row_count, checksum)
SELECT now(), format('%I.%I', n.nspname, c.relname), (companyos_integrity.table_checksum(c.oid::regclass)).*
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'companyos_integrity')
  AND n.nspname NOT LIKE 'pg_toast%';
DELETE FROM companyos_integrity.manifest WHERE recorded_at < now() - interval '40 days';
COMMIT;
