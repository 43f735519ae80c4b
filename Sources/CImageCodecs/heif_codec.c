// libheif decode of a HEIC/HEIF's primary image, upright by the file's own transforms, quiet, with the sizes known
// before anything is decoded; and an encoder for the tests.
#include "codec_status.h"

#include <libheif/heif.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// heif_init registers the decoder plugins; it is reference counted and not meant to run per image. Once per
// process, never undone: the plugins stay for the next image.
static pthread_once_t heif_once = PTHREAD_ONCE_INIT;
static void heif_start(void) { heif_init(NULL); }

static ic_code heif_fail(ic_status *st, struct heif_error error) {
    ic_code code;
    if (error.subcode == heif_suberror_End_of_data) code = IC_ERR_TRUNCATED;
    else if (error.subcode == heif_suberror_Security_limit_exceeded) code = IC_ERR_LIMIT;
    else if (error.code == heif_error_Memory_allocation_error) code = IC_ERR_NOMEM;
    else if (error.code == heif_error_Unsupported_filetype || error.code == heif_error_Unsupported_feature)
        code = IC_ERR_UNSUPPORTED;
    else code = IC_ERR_CORRUPT;
    ic_set_status(st, code, "%s", error.message ? error.message : "HEIF decoding failed");
    return code;
}

// libheif reports a file cut inside its 'meta' box as having none. The top-level box headers (32-bit size, or 1 and a
// 64-bit size, or 0 for "to the end") tell a cut file from a damaged one.
static int cut_short(const uint8_t *data, size_t size) {
    size_t pos = 0;
    while (pos < size) {
        if (size - pos < 8) return 1;
        const uint8_t *p = data + pos;
        uint64_t length = ((uint64_t)p[0] << 24) | ((uint64_t)p[1] << 16) | ((uint64_t)p[2] << 8) | p[3];
        if (length == 0) return 0;
        if (length == 1) {
            if (size - pos < 16) return 1;
            length = 0;
            for (int i = 8; i < 16; i++) length = (length << 8) | p[i];
            if (length < 16) return 0;
        } else if (length < 8) {
            return 0;
        }
        if (length > size - pos) return 1;
        pos += (size_t)length;
    }
    return 0;
}

int ic_heif_sniff(const uint8_t *data, size_t size) {
    if (data == NULL || size < 12) return 0;
    const char *mime = heif_get_file_mime_type(data, size < 4096 ? (int)size : 4096);
    return mime != NULL && (strcmp(mime, "image/heic") == 0 || strcmp(mime, "image/heif") == 0);
}

struct ic_heif_decoder {
    struct heif_context *context;
    struct heif_image_handle *handle;
    struct heif_image *image;
    const uint8_t *pixels;  // in image, after a successful decode
    size_t stride;
    int width, height, channels;
    int used;
};

static void release_file(ic_heif_decoder *dec) {
    if (dec->handle) heif_image_handle_release(dec->handle);
    if (dec->context) heif_context_free(dec->context);
    dec->handle = NULL;
    dec->context = NULL;
}

void ic_heif_close(ic_heif_decoder *dec) {
    if (dec == NULL) return;
    release_file(dec);
    if (dec->image) heif_image_release(dec->image);
    free(dec);
}

ic_heif_decoder *ic_heif_open(const uint8_t *data, size_t size, int max_dimension, ic_heif_info *info,
                              ic_status *st) {
    memset(info, 0, sizeof *info);
    ic_set_status(st, IC_OK, "");
    if (data == NULL || size == 0) {
        ic_set_status(st, IC_ERR_TRUNCATED, "empty input");
        return NULL;
    }
    pthread_once(&heif_once, heif_start);
    ic_heif_decoder *dec = calloc(1, sizeof *dec);
    if (dec == NULL || (dec->context = heif_context_alloc()) == NULL) {
        free(dec);
        ic_set_status(st, IC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    // libheif checks every item's coded size (ispe) against this while parsing, before it allocates pixels.
    if (max_dimension > 0) heif_context_set_maximum_image_size_limit(dec->context, max_dimension);
    struct heif_error error = heif_context_read_from_memory_without_copy(dec->context, data, size, NULL);
    if (error.code == heif_error_Ok) error = heif_context_get_primary_image_handle(dec->context, &dec->handle);
    if (error.code != heif_error_Ok) {
        if (heif_fail(st, error) == IC_ERR_CORRUPT && cut_short(data, size)) st->code = IC_ERR_TRUNCATED;
        ic_heif_close(dec);
        return NULL;
    }
    info->width = heif_image_handle_get_width(dec->handle);
    info->height = heif_image_handle_get_height(dec->handle);
    info->stored_width = heif_image_handle_get_ispe_width(dec->handle);
    info->stored_height = heif_image_handle_get_ispe_height(dec->handle);
    info->has_alpha = heif_image_handle_has_alpha_channel(dec->handle) ? 1 : 0;
    info->bit_depth = heif_image_handle_get_luma_bits_per_pixel(dec->handle);
    // A grid or overlay image is allocated at the size in its own descriptor, checked by libheif only against this
    // side limit when it decodes (libheif 1.15 has no pixel-count limit). Hold it to the sides the header gave,
    // which the caller checks against its pixel limit: a descriptor claiming more is refused, not allocated.
    int longest = info->width;
    if (info->height > longest) longest = info->height;
    if (info->stored_width > longest) longest = info->stored_width;
    if (info->stored_height > longest) longest = info->stored_height;
    if (longest > 0 && (max_dimension <= 0 || longest < max_dimension))
        heif_context_set_maximum_image_size_limit(dec->context, longest + 1);
    return dec;
}

ic_code ic_heif_decode(ic_heif_decoder *dec, ic_status *st) {
    ic_set_status(st, IC_OK, "");
    if (dec == NULL || dec->used || dec->handle == NULL) {
        ic_set_status(st, IC_ERR_ARGUMENT, "decoder not usable");
        return st->code;
    }
    dec->used = 1;
    struct heif_decoding_options *options = heif_decoding_options_alloc();
    if (options == NULL) {
        ic_set_status(st, IC_ERR_NOMEM, "out of memory");
        return st->code;
    }
    options->ignore_transformations = 0; // libheif applies irot/imir/clap: the image comes out as displayed
    const int expected_width = heif_image_handle_get_width(dec->handle);
    const int expected_height = heif_image_handle_get_height(dec->handle);
    // Without alpha, 3 bytes a pixel: a quarter less of the largest buffer (alpha is added a strip at a time).
    dec->channels = heif_image_handle_has_alpha_channel(dec->handle) ? 4 : 3;
    struct heif_error error = heif_decode_image(dec->handle, &dec->image, heif_colorspace_RGB,
                                                dec->channels == 4 ? heif_chroma_interleaved_RGBA
                                                                   : heif_chroma_interleaved_RGB, options);
    heif_decoding_options_free(options);
    if (error.code != heif_error_Ok) heif_fail(st, error); // before the release: the message lives in the context
    release_file(dec); // the decoded image stands alone: the file's bytes and boxes can go
    if (error.code != heif_error_Ok) {
        if (dec->image) heif_image_release(dec->image);
        dec->image = NULL;
        return st->code;
    }
    int stride = 0;
    const uint8_t *pixels = heif_image_get_plane_readonly(dec->image, heif_channel_interleaved, &stride);
    const int width = heif_image_get_width(dec->image, heif_channel_interleaved);
    const int height = heif_image_get_height(dec->image, heif_channel_interleaved);
    if (pixels == NULL || width != expected_width || height != expected_height || stride < width * dec->channels ||
        heif_image_get_bits_per_pixel(dec->image, heif_channel_interleaved) != 8 * dec->channels) {
        ic_set_status(st, IC_ERR_CORRUPT, "decoded HEIF image is %dx%d, not the %dx%d its header gives", width, height,
                   expected_width, expected_height);
        heif_image_release(dec->image);
        dec->image = NULL;
        return st->code;
    }
    dec->pixels = pixels;
    dec->stride = (size_t)stride;
    dec->width = width;
    dec->height = height;
    return IC_OK;
}

ic_code ic_heif_read_rows(const ic_heif_decoder *dec, int first_row, int rows, uint8_t *dst, size_t dst_size,
                          ic_status *st) {
    ic_set_status(st, IC_OK, "");
    if (dec == NULL || dec->pixels == NULL || first_row < 0 || rows < 0 || rows > dec->height - first_row ||
        dst_size < (size_t)rows * (size_t)dec->width * 4) {
        ic_set_status(st, IC_ERR_ARGUMENT, "invalid rows or buffer for the decoded HEIF image");
        return st->code;
    }
    const size_t out_row = (size_t)dec->width * 4;
    for (int r = 0; r < rows; r++) {
        const uint8_t *in = dec->pixels + (size_t)(first_row + r) * dec->stride;
        uint8_t *out = dst + (size_t)r * out_row;
        if (dec->channels == 4) {
            memcpy(out, in, out_row);
            continue;
        }
        for (int x = 0; x < dec->width; x++, in += 3, out += 4) {
            out[0] = in[0];
            out[1] = in[1];
            out[2] = in[2];
            out[3] = 255;
        }
    }
    return IC_OK;
}

// MARK: Encoder (tests)

typedef struct heif_out {
    uint8_t *p;
    size_t len;
} heif_out;

static struct heif_error write_out(struct heif_context *ctx, const void *data, size_t size, void *userdata) {
    (void)ctx;
    heif_out *out = userdata;
    struct heif_error ok = { heif_error_Ok, heif_suberror_Unspecified, "" };
    uint8_t *p = realloc(out->p, out->len + size);
    if (p == NULL) {
        struct heif_error failed = { heif_error_Encoding_error, heif_suberror_Cannot_write_output_data,
                                     "out of memory" };
        return failed;
    }
    memcpy(p + out->len, data, size);
    out->p = p;
    out->len += size;
    return ok;
}

ic_code ic_heif_encode_rgba(const uint8_t *rgba, int width, int height, int quality, int orientation,
                            const uint8_t *exif, size_t exif_size, uint8_t **out, size_t *out_size, ic_status *st) {
    *out = NULL;
    *out_size = 0;
    ic_set_status(st, IC_OK, "");
    if (rgba == NULL || width <= 0 || height <= 0 || orientation < 1 || orientation > 8) {
        ic_set_status(st, IC_ERR_ARGUMENT, "invalid image %dx%d or orientation %d for HEIF", width, height, orientation);
        return st->code;
    }
    pthread_once(&heif_once, heif_start);
    struct heif_context *ctx = heif_context_alloc();
    struct heif_encoder *encoder = NULL;
    struct heif_image *image = NULL;
    struct heif_image_handle *handle = NULL;
    struct heif_encoding_options *options = NULL;
    heif_out written = { NULL, 0 };
    struct heif_error error = heif_context_get_encoder_for_format(ctx, heif_compression_HEVC, &encoder);
    if (error.code == heif_error_Ok) error = heif_encoder_set_lossy_quality(encoder, quality);
    if (error.code == heif_error_Ok)
        error = heif_image_create(width, height, heif_colorspace_RGB, heif_chroma_interleaved_RGB, &image);
    if (error.code == heif_error_Ok) error = heif_image_add_plane(image, heif_channel_interleaved, width, height, 8);
    if (error.code == heif_error_Ok) {
        int stride = 0;
        uint8_t *plane = heif_image_get_plane(image, heif_channel_interleaved, &stride);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                memcpy(plane + (size_t)y * stride + (size_t)x * 3, rgba + ((size_t)y * width + x) * 4, 3);
        options = heif_encoding_options_alloc();
        if (options->version >= 5) options->image_orientation = (enum heif_orientation)orientation;
        error = heif_context_encode_image(ctx, image, encoder, options, &handle);
    }
    if (error.code == heif_error_Ok && exif != NULL)
        error = heif_context_add_exif_metadata(ctx, handle, exif, (int)exif_size);
    if (error.code == heif_error_Ok) {
        struct heif_writer writer = { 1, write_out };
        error = heif_context_write(ctx, &writer, &written);
    }
    if (options) heif_encoding_options_free(options);
    if (handle) heif_image_handle_release(handle);
    if (image) heif_image_release(image);
    if (encoder) heif_encoder_release(encoder);
    heif_context_free(ctx);
    if (error.code != heif_error_Ok) {
        free(written.p);
        ic_set_status(st, IC_ERR_ARGUMENT, "%s", error.message ? error.message : "HEIF encoding failed");
        return st->code;
    }
    *out = written.p;
    *out_size = written.len;
    return IC_OK;
}
