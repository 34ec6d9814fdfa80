#!/usr/bin/env bash
# Install the Debian packages the build and the tests need, when missing:
#   pkg-config, default-libmysqlclient-dev  compile mysqlclient (the MySQL provider's driver)
#   mariadb-server                          mariadbd for the tests' throwaway event databases
#   postgresql                              pg_ctl/initdb for a throwaway PostgreSQL when none runs
#   redis-server                            the tests' own Celery broker
#   chromium, fonts-dejavu-core             the ingest view's browser test (headless, driven by Playwright)
# As root it installs them with apt-get; otherwise it names them and fails.
set -euo pipefail

packages=(pkg-config default-libmysqlclient-dev mariadb-server postgresql redis-server chromium fonts-dejavu-core)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "Missing system packages: ${missing[*]}" >&2
    echo "Install them first: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "Installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The packages' maintainer scripts may start services of their own; the tests start their own servers.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
