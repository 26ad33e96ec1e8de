<?php
/**
 * Plugin Name: IGNY8 Companion
 * Description: Lets IGNY8 find the posts it published by their publish id, passes SEO fields through to Yoast SEO and Rank Math, and tells IGNY8 (signed webhooks) when one of its posts is edited, trashed or deleted.
 * Version: 1.0.0
 * Requires at least: 5.6
 * Requires PHP: 7.4
 * License: MIT
 */

if (!defined('ABSPATH')) {
    exit;
}

const IGNY8_COMPANION_VERSION = '1.0.0';
const IGNY8_META = ['igny8_publish_id', 'igny8_content_id', 'igny8_seo_title', 'igny8_seo_description', 'igny8_focus_keyword'];

// --- meta keys, readable and writable over the REST API by who may edit the post --------
add_action('init', function () {
    foreach (['post', 'page'] as $type) {
        foreach (IGNY8_META as $key) {
            register_post_meta($type, $key, [
                'type' => 'string',
                'single' => true,
                'show_in_rest' => true,
                'auth_callback' => function ($allowed, $meta_key, $post_id) {
                    return current_user_can('edit_post', $post_id);
                },
            ]);
        }
    }
});

// `?igny8_publish_id=…` / `?igny8_content_id=…` on the posts collection: the
// posts holding that meta value, in any status the caller may see.
foreach (['post', 'page'] as $igny8_type) {
    add_filter("rest_{$igny8_type}_collection_params", function ($params) {
        foreach (['igny8_publish_id', 'igny8_content_id'] as $key) {
            $params[$key] = ['description' => "Posts whose $key meta equals this value.", 'type' => 'string'];
        }
        return $params;
    });
    add_filter("rest_{$igny8_type}_query", function ($args, $request) {
        foreach (['igny8_publish_id', 'igny8_content_id'] as $key) {
            $value = $request->get_param($key);
            if (is_string($value) && $value !== '') {
                $args['meta_query'][] = ['key' => $key, 'value' => $value];
            }
        }
        return $args;
    }, 10, 2);
}

// --- SEO fields through to Yoast SEO and Rank Math ---------------------------------------
function igny8_companion_seo_passthrough($meta_id, $post_id, $meta_key, $value) {
    $targets = [
        'igny8_seo_title' => ['_yoast_wpseo_title', 'rank_math_title'],
        'igny8_seo_description' => ['_yoast_wpseo_metadesc', 'rank_math_description'],
        'igny8_focus_keyword' => ['_yoast_wpseo_focuskw', 'rank_math_focus_keyword'],
    ];
    if (!isset($targets[$meta_key])) {
        return;
    }
    foreach ($targets[$meta_key] as $target) {
        update_post_meta($post_id, $target, $value);
    }
}
add_action('added_post_meta', 'igny8_companion_seo_passthrough', 10, 4);
add_action('updated_post_meta', 'igny8_companion_seo_passthrough', 10, 4);

// --- settings IGNY8 writes when it connects: where webhooks go and their key ------------
add_action('rest_api_init', function () {
    register_rest_route('igny8/v1', '/status', [
        'methods' => 'GET',
        'permission_callback' => function () {
            return current_user_can('edit_posts');
        },
        'callback' => function () {
            return [
                'plugin_version' => IGNY8_COMPANION_VERSION,
                'webhook_url' => get_option('igny8_webhook_url', ''),
                'webhooks' => get_option('igny8_webhook_url', '') !== '' && get_option('igny8_webhook_secret', '') !== '',
                'seo_plugins' => array_values(array_filter([
                    defined('WPSEO_VERSION') ? 'yoast' : null,
                    class_exists('RankMath') ? 'rank_math' : null,
                ])),
            ];
        },
    ]);
    register_rest_route('igny8/v1', '/settings', [
        'methods' => 'POST',
        'permission_callback' => function () {
            return current_user_can('manage_options');
        },
        'args' => [
            'webhook_url' => ['type' => 'string', 'format' => 'uri', 'required' => true],
            'secret' => ['type' => 'string', 'minLength' => 32, 'required' => true],
        ],
        'callback' => function (WP_REST_Request $r) {
            $url = esc_url_raw($r['webhook_url'], ['http', 'https']);
            if ($url === '') {
                return new WP_Error('igny8_bad_url', 'webhook_url must be an http(s) URL', ['status' => 400]);
            }
            update_option('igny8_webhook_url', $url, false);
            update_option('igny8_webhook_secret', (string) $r['secret'], false);
            return ['webhooks' => true, 'webhook_url' => $url];
        },
    ]);
});

// --- signed webhooks when one of IGNY8's posts changes in WordPress ----------------------
/** Requests IGNY8 makes name their publish: its own writes send no webhook. */
function igny8_companion_is_ours() {
    return !empty($_SERVER['HTTP_X_IGNY8_PUBLISH']);
}

function igny8_companion_send($event, $post_id) {
    $publish_id = get_post_meta($post_id, 'igny8_publish_id', true);
    $url = get_option('igny8_webhook_url', '');
    $secret = get_option('igny8_webhook_secret', '');
    if ($publish_id === '' || $url === '' || $secret === '' || igny8_companion_is_ours()) {
        return;
    }
    $post = get_post($post_id);
    $body = wp_json_encode([
        'event' => $event,
        'post_id' => (int) $post_id,
        'publish_id' => $publish_id,
        'content_id' => get_post_meta($post_id, 'igny8_content_id', true),
        'status' => $event === 'deleted' ? 'deleted' : ($post ? $post->post_status : ''),
        'modified_gmt' => $post ? mysql_to_rfc3339($post->post_modified_gmt) : null,
        'content_sha256' => $post ? hash('sha256', $post->post_content) : null,
    ]);
    $timestamp = (string) time();
    $signature = hash_hmac('sha256', $timestamp . '.' . $body, $secret);
    wp_remote_post($url, [
        'timeout' => 5,
        'blocking' => true,
        'headers' => [
            'Content-Type' => 'application/json',
            'X-Igny8-Timestamp' => $timestamp,
            'X-Igny8-Signature' => 'sha256=' . $signature,
        ],
        'body' => $body,
    ]);
}

add_action('post_updated', function ($post_id, $after, $before) {
    if (wp_is_post_revision($post_id) || $after->post_status === 'trash' || $before->post_status === 'trash') {
        return;
    }
    igny8_companion_send('edited', $post_id);
}, 10, 3);
add_action('trashed_post', function ($post_id) {
    igny8_companion_send('trashed', $post_id);
});
add_action('untrashed_post', function ($post_id) {
    igny8_companion_send('restored', $post_id);
});
add_action('before_delete_post', function ($post_id) {
    igny8_companion_send('deleted', $post_id);
});
