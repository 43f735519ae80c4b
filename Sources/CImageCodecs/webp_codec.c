// libwebp decode of a still WebP (optionally scaled while decoding) or of an animation's first frame, quiet, with
// the canvas known before any pixel buffer and frames counted in constant memory.
#include "codec_status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <webp/decode.h>
#include <webp/demux.h>

static ic_code webp_code(VP8StatusCode status) {
    switch (status) {
    case VP8_STATUS_OK: return IC_OK;
    case VP8_STATUS_OUT_OF_MEMORY: return IC_ERR_NOMEM;
    case VP8_STATUS_UNSUPPORTED_FEATURE: return IC_ERR_UNSUPPORTED;
    case VP8_STATUS_NOT_ENOUGH_DATA: return IC_ERR_TRUNCATED;
    case VP8_STATUS_INVALID_PARAM: return IC_ERR_ARGUMENT;
    default: return IC_ERR_CORRUPT;
    }
}

static const char *webp_text(VP8StatusCode status) {
    switch (status) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported WebP feature";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "WebP data ends early";
    case VP8_STATUS_INVALID_PARAM: return "invalid decoding parameters";
    case VP8_STATUS_SUSPENDED: return "decoding suspended";
    case VP8_STATUS_USER_ABORT: return "decoding aborted";
    default: return "invalid WebP bitstream";
    }
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

// Counts ANMF chunks by their 8-byte headers (RIFF: fourcc, little-endian size, payload padded to even), without
// allocating, and notes where the first one ends. libwebpdemux would keep a record per frame, so it only ever
// sees the bytes up to that end.
static void walk_frames(const uint8_t *data, size_t size, int max_frames, int *frames, int *complete,
                        size_t *first_end) {
    *frames = 0;
    *complete = 1;
    *first_end = 0;
    size_t end = size;
    if (size >= 12) {
        const size_t riff_end = (size_t)le32(data + 4) + 8;
        if (riff_end < end) end = riff_end; // bytes after the RIFF chunk are not part of the file
    }
    size_t pos = 12;
    while (pos + 8 <= end) {
        const uint64_t length = le32(data + pos + 4);
        if (length > end - pos - 8) { // runs past the data: truncated or damaged
            *complete = 0;
            break;
        }
        const size_t next = pos + 8 + (size_t)length + (size_t)(length & 1);
        if (memcmp(data + pos, "ANMF", 4) == 0) {
            if (*frames == max_frames) {
                *complete = 0;
                break;
            }
            *frames += 1;
            if (*frames == 1) *first_end = next < end ? next : end;
        }
        pos = next;
    }
}

struct ic_webp_decoder {
    const uint8_t *data;
    size_t size;
    ic_webp_info header;
    WebPData frame;         // the first frame's bitstream (ALPH + VP8, or VP8L) for an animation
    int frame_x, frame_y, frame_width, frame_height;
    int used;
};

void ic_webp_close(ic_webp_decoder *dec) { free(dec); }

ic_webp_decoder *ic_webp_open(const uint8_t *data, size_t size, int max_frames, ic_webp_info *info, ic_status *st) {
    memset(info, 0, sizeof *info);
    ic_set_status(st, IC_OK, "");
    if (data == NULL || size == 0) {
        ic_set_status(st, IC_ERR_TRUNCATED, "empty input");
        return NULL;
    }
    WebPBitstreamFeatures features;
    VP8StatusCode status = WebPGetFeatures(data, size, &features);
    if (status != VP8_STATUS_OK) {
        ic_set_status(st, webp_code(status), "%s", webp_text(status));
        return NULL;
    }
    info->width = features.width;
    info->height = features.height;
    info->has_alpha = features.has_alpha ? 1 : 0;
    info->animated = features.has_animation ? 1 : 0;
    info->frames = 1;
    info->frames_complete = 1;
    ic_webp_decoder *dec = calloc(1, sizeof *dec);
    if (dec == NULL) {
        ic_set_status(st, IC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    dec->data = data;
    dec->size = size;
    if (info->animated) {
        size_t first_end;
        walk_frames(data, size, max_frames > 0 ? max_frames : 1, &info->frames, &info->frames_complete, &first_end);
        if (info->frames == 0) {
            ic_set_status(st, info->frames_complete ? IC_ERR_CORRUPT : IC_ERR_TRUNCATED, "animated WebP has no frame");
            free(dec);
            return NULL;
        }
        WebPData head = { data, first_end };
        WebPDemuxState state;
        WebPDemuxer *demux = WebPDemuxPartial(&head, &state);
        WebPIterator iter;
        memset(&iter, 0, sizeof iter);
        if (demux == NULL || state == WEBP_DEMUX_PARSE_ERROR || !WebPDemuxGetFrame(demux, 1, &iter) || !iter.complete) {
            ic_set_status(st, demux == NULL || state == WEBP_DEMUX_PARSE_ERROR ? IC_ERR_CORRUPT : IC_ERR_TRUNCATED,
                       "first frame of the animated WebP is unreadable");
            if (demux) {
                WebPDemuxReleaseIterator(&iter);
                WebPDemuxDelete(demux);
            }
            free(dec);
            return NULL;
        }
        dec->frame = iter.fragment; // points into data, not into the demuxer
        dec->frame_x = iter.x_offset;
        dec->frame_y = iter.y_offset;
        dec->frame_width = iter.width;
        dec->frame_height = iter.height;
        WebPDemuxReleaseIterator(&iter);
        WebPDemuxDelete(demux);
        // The frame must fit the canvas and be as large as its bitstream says, or it would be written outside its
        // rectangle.
        WebPBitstreamFeatures frame;
        status = WebPGetFeatures(dec->frame.bytes, dec->frame.size, &frame);
        if (status != VP8_STATUS_OK || frame.width != dec->frame_width || frame.height != dec->frame_height ||
            dec->frame_x < 0 || dec->frame_y < 0 || dec->frame_width <= 0 || dec->frame_height <= 0 ||
            dec->frame_x + dec->frame_width > info->width || dec->frame_y + dec->frame_height > info->height) {
            ic_set_status(st, status == VP8_STATUS_OK ? IC_ERR_CORRUPT : webp_code(status),
                       "first frame of the animated WebP does not fit its canvas");
            free(dec);
            return NULL;
        }
    }
    dec->header = *info;
    return dec;
}

ic_code ic_webp_read_rgba(ic_webp_decoder *dec, uint8_t *dst, size_t dst_size, int out_width, int out_height,
                          ic_status *st) {
    ic_set_status(st, IC_OK, "");
    if (dec == NULL || dec->used) {
        ic_set_status(st, IC_ERR_ARGUMENT, "decoder not usable");
        return st->code;
    }
    dec->used = 1;
    const ic_webp_info *h = &dec->header;
    const int scaled = out_width != h->width || out_height != h->height;
    if (out_width <= 0 || out_height <= 0 || out_width > h->width || out_height > h->height ||
        (scaled && h->animated) || (size_t)out_width * 4 * (size_t)out_height != dst_size) {
        ic_set_status(st, IC_ERR_ARGUMENT, "invalid output size %dx%d for a %dx%d WebP", out_width, out_height,
                   h->width, h->height);
        return st->code;
    }
    WebPDecoderConfig config;
    if (!WebPInitDecoderConfig(&config)) {
        ic_set_status(st, IC_ERR_ARGUMENT, "libwebp version mismatch");
        return st->code;
    }
    config.output.colorspace = MODE_RGBA;
    config.output.is_external_memory = 1;
    // Lossy files: the loop filter and output run on a second thread beside the decoding (as the JPEG resizer
    // does), most of a large WebP's time.
    config.options.use_threads = 1;
    const uint8_t *bitstream = dec->data;
    size_t bitstream_size = dec->size;
    const size_t stride = (size_t)out_width * 4;
    if (h->animated) {
        // The first frame over a transparent canvas is the frame itself (libwebp's own animation decoder does the
        // same): decode straight into its rectangle.
        memset(dst, 0, dst_size);
        bitstream = dec->frame.bytes;
        bitstream_size = dec->frame.size;
        config.output.u.RGBA.rgba = dst + (size_t)dec->frame_y * stride + (size_t)dec->frame_x * 4;
        config.output.u.RGBA.size = stride * (size_t)(dec->frame_height - 1) + (size_t)dec->frame_width * 4;
    } else {
        if (scaled) {
            // libwebp's rescaler averages the decoded rows as they come, so the full-size image is never whole.
            config.options.use_scaling = 1;
            config.options.scaled_width = out_width;
            config.options.scaled_height = out_height;
        }
        config.output.u.RGBA.rgba = dst;
        config.output.u.RGBA.size = dst_size;
    }
    config.output.u.RGBA.stride = (int)stride;
    VP8StatusCode status = WebPDecode(bitstream, bitstream_size, &config);
    WebPFreeDecBuffer(&config.output); // external memory: frees nothing of ours
    if (status != VP8_STATUS_OK) {
        ic_set_status(st, webp_code(status), "%s", webp_text(status));
        return st->code;
    }
    return IC_OK;
}
