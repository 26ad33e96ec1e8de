#!/usr/bin/env bash
# A real WordPress on loopback for the publisher's tests: Debian's
# `wordpress` package (6.1) served by PHP's built-in server, its own
# MariaDB on a unix socket in a private folder (no network), two sites
# from one docroot — one plain, one with the companion plugin active
# (deploy/wordpress/igny8-companion) — each with an Application Password.
#
#   scripts/wordpress.sh start   # install what is missing, start, print the env file's path
#   scripts/wordpress.sh stop
#
# Writes $IGNY8_WP_RUN/env (sourced by scripts/test.sh):
#   IGNY8_TEST_WP_URL, IGNY8_TEST_WP_PLUGIN_URL, IGNY8_TEST_WP_USER,
#   IGNY8_TEST_WP_APP_PASSWORD, IGNY8_TEST_WP_PLUGIN_APP_PASSWORD,
#   IGNY8_TEST_WP_AUTHOR (a user who may not publish) and its password.
# Every start installs both sites afresh (a few seconds); the extracted
# package and the PHP packages stay cached.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/igny8-test"
WP_SRC="$CACHE/wordpress-6.1"
RUN="${IGNY8_WP_RUN:-${TMPDIR:-/tmp}/igny8-wordpress}"
PORT="${IGNY8_WP_PORT:-8781}"
PLUGIN_PORT="${IGNY8_WP_PLUGIN_PORT:-8782}"
PHP_PACKAGES="php-cli php-mysql php-gd php-xml php-mbstring php-curl php-zip php-intl php-imagick php-getid3 libjs-cropper libjs-underscore mariadb-server"

say() { printf 'wordpress.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

install_packages() {
  local missing=()
  command -v php >/dev/null || missing+=(php)
  php -m 2>/dev/null | grep -qi '^mysqli$' || missing+=(php-mysql)
  php -m 2>/dev/null | grep -qi '^gd$' || missing+=(php-gd)
  [ -d /usr/share/php/getid3 ] || missing+=(php-getid3)
  command -v mariadb-install-db >/dev/null || missing+=(mariadb-server)
  [ ${#missing[@]} -eq 0 ] && return
  say "installing PHP and MariaDB packages (${missing[*]} missing)"
  command -v apt-get >/dev/null || die "WordPress tests need: $PHP_PACKAGES (apt-get is not here)"
  [ "$(id -u)" = 0 ] || die "WordPress tests need: $PHP_PACKAGES — install them as root"
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PHP_PACKAGES >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PHP_PACKAGES >/dev/null; } \
    || die "cannot install $PHP_PACKAGES"
}

extract_wordpress() {
  [ -f "$WP_SRC/wp-settings.php" ] && return
  say "fetching Debian's wordpress package (without Apache) into $WP_SRC"
  local tmp; tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get download wordpress >/dev/null 2>&1) \
    || { apt-get update -qq >/dev/null 2>&1 && (cd "$tmp" && apt-get download wordpress >/dev/null); } \
    || die "cannot download Debian's wordpress package"
  dpkg-deb -x "$tmp"/wordpress_*.deb "$tmp/x"
  mkdir -p "$(dirname "$WP_SRC")"
  rm -rf "$WP_SRC" && mv "$tmp/x/usr/share/wordpress" "$WP_SRC"
  rm -rf "$tmp"
}

# True when the pid file names a live process whose command line mentions
# $2 (a pid file that outlived its process may name somebody else's now).
ours() { local p; p="$(cat "$1" 2>/dev/null)" && [ -n "$p" ] && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$2"; }

stop() {
  for f in "$RUN"/php-*.pid; do
    [ -f "$f" ] || continue
    if ours "$f" "$RUN/docroot"; then
      kill -- "-$(cat "$f")" 2>/dev/null || kill "$(cat "$f")" 2>/dev/null || true
    fi
    rm -f "$f"
  done
  # mysqld writes its own pid file.
  if ours "$RUN/mysql.pid" "$RUN/mysql"; then
    local mp; mp="$(cat "$RUN/mysql.pid")"
    kill "$mp" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$mp" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$mp" 2>/dev/null || true
  fi
  # PHP's server workers close their sockets a moment after the parent goes.
  for _ in $(seq 1 50); do port_open "$PORT" || port_open "$PLUGIN_PORT" || break; sleep 0.1; done
}

start_mariadb() {
  # A socket or pid file left by a server that died with an earlier session
  # would pass the wait below at once and refuse the connection (errno 111).
  rm -rf "$RUN/mysql" "$RUN/mysqld.sock" "$RUN/mysqld.sock.lock" "$RUN/mysql.pid" && mkdir -p "$RUN/mysql"
  local user=(); [ "$(id -u)" = 0 ] && user=(--user=root)
  mariadb-install-db --no-defaults "${user[@]}" --datadir="$RUN/mysql" --auth-root-authentication-method=normal \
    --skip-test-db >"$RUN/mariadb-install.log" 2>&1 || die "mariadb-install-db failed; see $RUN/mariadb-install.log"
  nohup mysqld --no-defaults "${user[@]}" --datadir="$RUN/mysql" --socket="$RUN/mysqld.sock" --skip-networking \
    --pid-file="$RUN/mysql.pid" --log-error="$RUN/mysqld.log" --innodb-buffer-pool-size=64M \
    --innodb-flush-log-at-trx-commit=2 >/dev/null 2>&1 &
  local pid=$!
  # Ready means it answers a query, not that its socket file exists.
  for _ in $(seq 1 300); do
    mariadb --no-defaults -S "$RUN/mysqld.sock" -uroot -e "SELECT 1" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { tail -20 "$RUN/mysqld.log" >&2; die "MariaDB exited at start; see $RUN/mysqld.log"; }
    sleep 0.1
  done
  mariadb --no-defaults -S "$RUN/mysqld.sock" -uroot -e "CREATE DATABASE wordpress" \
    || { tail -20 "$RUN/mysqld.log" >&2; die "cannot create the wordpress database (MariaDB did not answer on $RUN/mysqld.sock)"; }
}

write_docroot() {
  rm -rf "$RUN/docroot" && cp -a "$WP_SRC" "$RUN/docroot"
  local d="$RUN/docroot"
  mkdir -p "$d/wp-content/uploads" "$d/wp-content/plugins"
  cp -a "$ROOT/deploy/wordpress/igny8-companion" "$d/wp-content/plugins/"
  cat >"$d/wp-config.php" <<PHP
<?php
// Two test sites from one docroot: the port picks the table prefix.
\$igny8_port = isset(\$_SERVER['SERVER_PORT']) ? (int) \$_SERVER['SERVER_PORT'] : (int) getenv('IGNY8_WP_PORT');
\$table_prefix = \$igny8_port === $PLUGIN_PORT ? 'wpp_' : 'wp_';
define('DB_NAME', 'wordpress');
define('DB_USER', 'root');
define('DB_PASSWORD', '');
define('DB_HOST', 'localhost:$RUN/mysqld.sock');
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
define('WP_HOME', 'http://127.0.0.1:' . \$igny8_port);
define('WP_SITEURL', 'http://127.0.0.1:' . \$igny8_port);
define('WP_ENVIRONMENT_TYPE', 'local');
define('WP_CONTENT_DIR', __DIR__ . '/wp-content');
define('DISABLE_WP_CRON', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('WP_DEBUG', false);
define('FS_METHOD', 'direct');
foreach (['AUTH_KEY','SECURE_AUTH_KEY','LOGGED_IN_KEY','NONCE_KEY','AUTH_SALT','SECURE_AUTH_SALT','LOGGED_IN_SALT','NONCE_SALT'] as \$k) { define(\$k, 'igny8-test-' . \$k); }
if (!defined('ABSPATH')) { define('ABSPATH', __DIR__ . '/'); }
require_once ABSPATH . 'wp-settings.php';
PHP
  # PHP's built-in server has no .htaccess: this router stands in for it.
  cat >"$d/router.php" <<'PHP'
<?php
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$file = __DIR__ . $path;
if ($path !== '/' && is_file($file)) {
    if (substr($file, -4) === '.php') { chdir(dirname($file)); require $file; return true; }
    return false;
}
chdir(__DIR__);
require __DIR__ . '/index.php';
PHP
}

install_site() { # port title plugin?(0|1) -> prints "password author_password"
  IGNY8_WP_PORT="$1" IGNY8_WP_DOCROOT="$RUN/docroot" php -d display_errors=stderr "$ROOT/scripts/wordpress-install.php" "$2" "$3"
}

start_php() { # port
  # In a session of its own: stop() ends the server and its workers as a group.
  PHP_CLI_SERVER_WORKERS="${IGNY8_WP_WORKERS:-4}" nohup setsid php -d upload_max_filesize=32M -d post_max_size=40M \
    -d memory_limit=256M -S "127.0.0.1:$1" -t "$RUN/docroot" "$RUN/docroot/router.php" >"$RUN/php-$1.log" 2>&1 &
  echo $! >"$RUN/php-$1.pid"
  for _ in $(seq 1 100); do port_open "$1" && return 0; sleep 0.1; done
  die "PHP's server did not start on 127.0.0.1:$1; see $RUN/php-$1.log"
}

start() {
  install_packages
  extract_wordpress
  mkdir -p "$RUN"
  stop
  port_open "$PORT" && die "127.0.0.1:$PORT is taken (set IGNY8_WP_PORT)"
  port_open "$PLUGIN_PORT" && die "127.0.0.1:$PLUGIN_PORT is taken (set IGNY8_WP_PLUGIN_PORT)"
  start_mariadb
  write_docroot
  local plain plugin
  plain="$(install_site "$PORT" "IGNY8 test site" 0)" || die "installing the plain site failed"
  plugin="$(install_site "$PLUGIN_PORT" "IGNY8 plugin site" 1)" || die "installing the plugin site failed"
  start_php "$PORT"
  start_php "$PLUGIN_PORT"
  read -r pw author_pw <<<"$plain"
  read -r ppw _ <<<"$plugin"
  cat >"$RUN/env" <<ENV
export IGNY8_TEST_WP_URL=http://127.0.0.1:$PORT
export IGNY8_TEST_WP_PLUGIN_URL=http://127.0.0.1:$PLUGIN_PORT
export IGNY8_TEST_WP_USER=admin
export IGNY8_TEST_WP_APP_PASSWORD='$pw'
export IGNY8_TEST_WP_PLUGIN_APP_PASSWORD='$ppw'
export IGNY8_TEST_WP_AUTHOR=contributor
export IGNY8_TEST_WP_AUTHOR_APP_PASSWORD='$author_pw'
export IGNY8_TEST_WP_DOCROOT='$RUN/docroot'
ENV
  curl -fsS "http://127.0.0.1:$PORT/wp-json/" >/dev/null || die "WordPress's REST API does not answer on 127.0.0.1:$PORT; see $RUN/php-$PORT.log"
  echo "$RUN/env"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) die "usage: $0 start|stop" ;;
esac
