#!/bin/bash
# Runs once, when the data volume is empty: one role and one database per service,
# with the passwords of the Secrets momentum-<service>-db. No service can connect to
# another's database.
set -euo pipefail
for service in auth tasks analytics; do
    password_var="MOMENTUM_${service^^}_DB_PASSWORD"
    psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        --set=name="momentum_${service}" --set=password="${!password_var}" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
done
