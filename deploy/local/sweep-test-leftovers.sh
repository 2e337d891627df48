#!/usr/bin/env bash
# Removes the databases, vhosts and RabbitMQ users that tests killed mid-run
# left behind (tests remove their own when they end normally). Names are
# fa_test_<uuid>, fa-test-<uuid> and fa-test-<uuid>-<service>; nothing else
# is touched.
set -uo pipefail
for db in $(psql "${FA_SF_TEST_ADMIN_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}" -Atc \
    "SELECT datname FROM pg_database WHERE datname LIKE 'fa\_test\_%'" 2>/dev/null); do
  psql "${FA_SF_TEST_ADMIN_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
done
for vhost in $(rabbitmqctl -q list_vhosts name 2>/dev/null | grep '^fa-test-'); do
  rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1
done
for user in $(rabbitmqctl -q list_users 2>/dev/null | awk '{print $1}' | grep '^fa-test-'); do
  rabbitmqctl -q delete_user "$user" >/dev/null 2>&1
done
exit 0
