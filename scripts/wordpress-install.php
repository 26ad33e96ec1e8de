<?php
// Installs one test site (called by scripts/wordpress.sh with IGNY8_WP_PORT
// and IGNY8_WP_DOCROOT set): wp_install(), pretty permalinks, a contributor
// (who may not publish), an Application Password for each, the companion
// plugin active when asked. Prints "<admin password> <contributor password>".
$title = $argv[1] ?? 'IGNY8 test site';
$with_plugin = ($argv[2] ?? '0') === '1';
$_SERVER['HTTP_HOST'] = '127.0.0.1:' . getenv('IGNY8_WP_PORT');
$_SERVER['SERVER_PORT'] = getenv('IGNY8_WP_PORT');
$_SERVER['REQUEST_URI'] = '/';
define('WP_INSTALLING', true);
require getenv('IGNY8_WP_DOCROOT') . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';
// No mail leaves a test site.
add_filter('pre_wp_mail', '__return_false');
$r = wp_install($title, 'admin', 'admin@example.test', false, '', 'igny8-admin-password');
if (is_wp_error($r)) { fwrite(STDERR, $r->get_error_message() . "\n"); exit(1); }
update_option('permalink_structure', '/%postname%/');
flush_rewrite_rules(true);
$contributor = wp_insert_user(['user_login' => 'contributor', 'user_pass' => 'igny8-contributor-password',
    'user_email' => 'contributor@example.test', 'role' => 'contributor']);
if (is_wp_error($contributor)) { fwrite(STDERR, $contributor->get_error_message() . "\n"); exit(1); }
if ($with_plugin) {
    $a = activate_plugin('igny8-companion/igny8-companion.php');
    if (is_wp_error($a)) { fwrite(STDERR, 'plugin: ' . $a->get_error_message() . "\n"); exit(1); }
}
[$pw] = WP_Application_Passwords::create_new_application_password(1, ['name' => 'igny8']);
[$cpw] = WP_Application_Passwords::create_new_application_password($contributor, ['name' => 'igny8']);
echo $pw, ' ', $cpw, "\n";
