// libpng decode/encode behind setjmp, quiet, with size and chunk limits for hostile input.
#include "codec_status.h"

#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ic_png_decoder {
    png_structp png;
    png_infop info;
    const uint8_t *data;
    size_t size, pos;
    ic_status *st;      // status of the current call, where the error callback writes
    int truncated;      // the reader ran out of data
    int unusable;
    ic_png_info header;
    ic_status idle;     // where errors go between calls (st never points at a caller's dead status)
};

static void png_err(png_structp png, png_const_charp msg) {
    struct ic_png_decoder *dec = png_get_error_ptr(png);
    if (dec->st->code == IC_OK) ic_set_status(dec->st, IC_ERR_CORRUPT, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp msg) { (void)png; (void)msg; } // never print

static void png_read_mem(png_structp png, png_bytep out, size_t n) {
    struct ic_png_decoder *dec = png_get_io_ptr(png);
    if (n > dec->size - dec->pos) {
        dec->truncated = 1;
        ic_set_status(dec->st, IC_ERR_TRUNCATED, "PNG data ends early");
        png_error(png, "PNG data ends early");
    }
    memcpy(out, dec->data + dec->pos, n);
    dec->pos += n;
}

static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void destroy(struct ic_png_decoder *dec) {
    png_destroy_read_struct(&dec->png, dec->info ? &dec->info : NULL, NULL);
    free(dec);
}

ic_png_decoder *ic_png_open(const uint8_t *data, size_t size, const ic_png_limits *limits,
                            ic_png_info *info, ic_status *st) {
    memset(info, 0, sizeof *info);
    ic_set_status(st, IC_OK, "");
    if (data == NULL || size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        ic_set_status(st, size < 8 ? IC_ERR_TRUNCATED : IC_ERR_CORRUPT, "not a PNG file (bad signature)");
        return NULL;
    }
    // Peek at IHDR so the caller gets a precise "too many pixels" error before libpng allocates anything.
    if (size >= 8 + 8 + 13 && be32(data + 8) == 13 && memcmp(data + 12, "IHDR", 4) == 0) {
        info->width = be32(data + 16);
        info->height = be32(data + 20);
        uint64_t pixels = (uint64_t)info->width * info->height;
        if ((limits->max_pixels && pixels > limits->max_pixels) ||
            (limits->max_width && info->width > limits->max_width) ||
            (limits->max_height && info->height > limits->max_height)) {
            ic_set_status(st, IC_ERR_LIMIT, "image is %ux%u, over the limits", info->width, info->height);
            return NULL;
        }
    }
    struct ic_png_decoder *dec = calloc(1, sizeof *dec);
    if (dec == NULL) {
        ic_set_status(st, IC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    dec->data = data;
    dec->size = size;
    dec->st = st;
    dec->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, dec, png_err, png_warn);
    if (dec->png == NULL) {
        free(dec);
        ic_set_status(st, IC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    dec->info = png_create_info_struct(dec->png);
    if (dec->info == NULL) {
        destroy(dec);
        ic_set_status(st, IC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (setjmp(png_jmpbuf(dec->png))) {
        destroy(dec);
        return NULL;
    }
    if (limits->max_width && limits->max_height) png_set_user_limits(dec->png, limits->max_width, limits->max_height);
    if (limits->max_chunks) png_set_chunk_cache_max(dec->png, limits->max_chunks);
    if (limits->max_chunk_bytes) png_set_chunk_malloc_max(dec->png, (png_alloc_size_t)limits->max_chunk_bytes);
    // We use none of the metadata: skip it instead of decompressing text and ICC profiles.
    static const png_byte ignored[] = "bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0pCAL\0pHYs\0sBIT\0"
                                      "sCAL\0sPLT\0sRGB\0tEXt\0tIME\0zTXt\0";
    png_set_keep_unknown_chunks(dec->png, PNG_HANDLE_CHUNK_NEVER, ignored, (int)(sizeof ignored / 5));
    png_set_read_fn(dec->png, dec, png_read_mem);
    // Read IDAT in small pieces (default 8 KB) so a file cut short still yields the rows before the cut.
    png_set_compression_buffer_size(dec->png, 1024);
    png_read_info(dec->png, dec->info);

    png_uint_32 w, h;
    int depth, color, interlace;
    png_get_IHDR(dec->png, dec->info, &w, &h, &depth, &color, &interlace, NULL, NULL);
    info->width = w;
    info->height = h;
    info->bit_depth = depth;
    info->color_type = color;
    info->interlaced = interlace != PNG_INTERLACE_NONE;
    info->has_alpha = (color & PNG_COLOR_MASK_ALPHA) || png_get_valid(dec->png, dec->info, PNG_INFO_tRNS);
    dec->header = *info;
    dec->st = &dec->idle;
    return dec;
}

static ic_code read_rgba(ic_png_decoder *dec, uint8_t *dst, size_t dst_size, int *partial, ic_status *st);

ic_code ic_png_read_rgba(ic_png_decoder *dec, uint8_t *dst, size_t dst_size, int *partial, ic_status *st) {
    ic_code code = read_rgba(dec, dst, dst_size, partial, st);
    if (dec != NULL) dec->st = &dec->idle;
    return code;
}

static ic_code read_rgba(ic_png_decoder *dec, uint8_t *dst, size_t dst_size, int *partial, ic_status *st) {
    *partial = 0;
    ic_set_status(st, IC_OK, "");
    if (dec == NULL || dec->unusable) {
        ic_set_status(st, IC_ERR_ARGUMENT, "decoder not usable");
        return st->code;
    }
    dec->st = st;
    const size_t stride = (size_t)dec->header.width * 4;
    const uint32_t height = dec->header.height;
    if (stride * height != dst_size) {
        ic_set_status(st, IC_ERR_ARGUMENT, "output buffer size mismatch");
        return st->code;
    }
    volatile uint32_t rows_done = 0; // read after longjmp
    png_structp png = dec->png;
    if (setjmp(png_jmpbuf(png))) {
        dec->unusable = 1;
        if (dec->truncated && !dec->header.interlaced && rows_done > 0) {
            // The file was cut short: keep the rows we have; the rest shows grey, like libjpeg's missing data.
            // Damaged data (CRC, zlib errors) stays an error.
            for (size_t y = rows_done; y < height; y++) {
                uint8_t *row = dst + y * stride;
                for (size_t x = 0; x < stride; x += 4) {
                    row[x] = row[x + 1] = row[x + 2] = 128;
                    row[x + 3] = 255;
                }
            }
            *partial = 1;
            st->code = IC_OK; // the message stays as a note
            return IC_OK;
        }
        return st->code == IC_OK ? IC_ERR_CORRUPT : st->code;
    }
    int color = dec->header.color_type, depth = dec->header.bit_depth;
    int trns = png_get_valid(png, dec->info, PNG_INFO_tRNS) != 0;
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (trns) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_strip_16(png); // high byte: matches the PngSuite 8-bit references
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    if (!(color & PNG_COLOR_MASK_ALPHA) && !trns) png_set_filler(png, 0xFF, PNG_FILLER_AFTER);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, dec->info);
    if (png_get_rowbytes(png, dec->info) != stride) {
        ic_set_status(st, IC_ERR_UNSUPPORTED, "unexpected PNG row layout");
        dec->unusable = 1;
        return st->code;
    }
    for (int pass = 0; pass < passes; pass++) {
        for (uint32_t y = 0; y < height; y++) {
            png_read_row(png, dst + (size_t)y * stride, NULL);
            if (pass == passes - 1) rows_done = y + 1;
        }
    }
    // No png_read_end: chunks after the image are not needed (the last IDAT's CRC is checked at the last row).
    dec->unusable = 1;
    return IC_OK;
}

void ic_png_close(ic_png_decoder *dec) {
    if (dec == NULL) return;
    destroy(dec);
}

// MARK: Encoder

typedef struct ic_png_out {
    uint8_t *p;
    size_t len, cap;
    ic_status *st;
} ic_png_out;

static void png_write_mem(png_structp png, png_bytep data, size_t n) {
    ic_png_out *out = png_get_io_ptr(png);
    if (n > out->cap - out->len) {
        size_t cap = out->cap ? out->cap : 16384;
        while (n > cap - out->len) cap *= 2;
        uint8_t *p = realloc(out->p, cap);
        if (p == NULL) {
            ic_set_status(out->st, IC_ERR_NOMEM, "out of memory");
            png_error(png, "out of memory");
        }
        out->p = p;
        out->cap = cap;
    }
    memcpy(out->p + out->len, data, n);
    out->len += n;
}

static void png_flush_mem(png_structp png) { (void)png; }

static void png_enc_err(png_structp png, png_const_charp msg) {
    ic_png_out *out = png_get_error_ptr(png);
    if (out->st->code == IC_OK) ic_set_status(out->st, IC_ERR_ARGUMENT, "%s", msg);
    png_longjmp(png, 1);
}

ic_code ic_png_encode_rgba(const uint8_t *rgba, int width, int height, int compression_level,
                           uint8_t **out, size_t *out_size, ic_status *st) {
    *out = NULL;
    *out_size = 0;
    ic_set_status(st, IC_OK, "");
    if (rgba == NULL || width <= 0 || height <= 0) {
        ic_set_status(st, IC_ERR_ARGUMENT, "invalid image size %dx%d for PNG", width, height);
        return st->code;
    }
    ic_png_out *o = calloc(1, sizeof *o); // on the heap: stays valid across longjmp
    if (o == NULL) {
        ic_set_status(st, IC_ERR_NOMEM, "out of memory");
        return st->code;
    }
    o->st = st;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, o, png_enc_err, png_warn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL) {
        png_destroy_write_struct(&png, NULL);
        free(o);
        ic_set_status(st, IC_ERR_NOMEM, "out of memory");
        return st->code;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(o->p);
        free(o);
        return st->code == IC_OK ? IC_ERR_ARGUMENT : st->code;
    }
    png_set_write_fn(png, o, png_write_mem, png_flush_mem);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGBA, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, compression_level);
    png_write_info(png, info);
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(rgba + (size_t)y * width * 4));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    *out = o->p;
    *out_size = o->len;
    free(o);
    return IC_OK;
}
