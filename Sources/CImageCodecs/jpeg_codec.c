// libjpeg(-turbo) decode/encode behind setjmp, with quiet error handling and limits for hostile input.
#include "codec_status.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h> // jpeglib.h needs FILE and size_t
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h> // before jerror.h: its message list depends on jconfig.h
#include <jerror.h>

void ic_free(void *p) { free(p); }

// MARK: Error manager shared by the decoder and the encoder

typedef struct ic_jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    ic_status *st;
    int max_warnings;
    int saw_eof;       // JWRN_JPEG_EOF: the source ran dry and libjpeg inserted an EOI
    int damaged;       // a warning that means image data was lost
} ic_jpeg_err;

static ic_code code_for(int msg_code) {
    switch (msg_code) {
    case JERR_BAD_PRECISION:
    case JERR_NOT_COMPILED:
    case JERR_CCIR601_NOTIMPL:
    case JERR_CONVERSION_NOTIMPL:
    case JERR_ARITH_NOTIMPL:
        return IC_ERR_UNSUPPORTED;
    case JERR_NO_BACKING_STORE: // max_memory_to_use exceeded: libjpeg-turbo has no temp-file backing store
        return IC_ERR_LIMIT;
    case JERR_OUT_OF_MEMORY:
        return IC_ERR_NOMEM;
    case JERR_INPUT_EMPTY:
        return IC_ERR_TRUNCATED;
    default:
        return IC_ERR_CORRUPT;
    }
}

static void err_exit(j_common_ptr cinfo) {
    ic_jpeg_err *err = (ic_jpeg_err *)cinfo->err;
    char buf[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buf);
    ic_code code = code_for(cinfo->err->msg_code);
    if (code == IC_ERR_CORRUPT && err->saw_eof) code = IC_ERR_TRUNCATED;
    if (cinfo->err->msg_code == JERR_NO_BACKING_STORE)
        ic_set_status(err->st, code, "decoder memory limit exceeded");
    else
        ic_set_status(err->st, code, "%s", buf);
    longjmp(err->jump, 1);
}

static void output_message(j_common_ptr cinfo) { (void)cinfo; } // never print

static void emit_message(j_common_ptr cinfo, int msg_level) {
    if (msg_level >= 0) return; // trace messages
    ic_jpeg_err *err = (ic_jpeg_err *)cinfo->err;
    err->pub.num_warnings++;
    switch (err->pub.msg_code) {
    case JWRN_JPEG_EOF: err->saw_eof = 1; err->damaged = 1; break;
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_MUST_RESYNC:
    case JWRN_ARITH_BAD_CODE:
    case JWRN_NOT_SEQUENTIAL: err->damaged = 1; break;
    default: break; // e.g. extraneous bytes before a marker, unknown JFIF version: harmless
    }
    // A damaged stream can warn once per MCU; past the limit treat it as an error (libjpeg-turbo's advice).
    if (err->max_warnings > 0 && err->pub.num_warnings > err->max_warnings) {
        ic_set_status(err->st, err->saw_eof ? IC_ERR_TRUNCATED : IC_ERR_CORRUPT,
                   "too many corrupt-data warnings (over %d)", err->max_warnings);
        longjmp(err->jump, 1);
    }
}

static void init_err(ic_jpeg_err *err, ic_status *st, int max_warnings) {
    jpeg_std_error(&err->pub);
    err->pub.error_exit = err_exit;
    err->pub.output_message = output_message;
    err->pub.emit_message = emit_message;
    err->st = st;
    err->max_warnings = max_warnings;
    err->saw_eof = 0;
    err->damaged = 0;
}

// MARK: Decoder

struct ic_jpeg_decoder {
    struct jpeg_decompress_struct cinfo;
    ic_jpeg_err err;
    struct jpeg_progress_mgr progress;
    int max_scans;
    int unusable;   // after a longjmp, or after the last row, the libjpeg object may only be destroyed
    int started;    // ic_jpeg_start succeeded
    int cmyk;       // output is CMYK, converted to RGBA row by row
    ic_status idle; // where errors go between calls (err.st never points at a caller's dead status)
};

static void progress_monitor(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    ic_jpeg_decoder *dec = (ic_jpeg_decoder *)cinfo->client_data;
    // Each scan of a progressive file is a full pass over the coefficients: bound the work for crafted files.
    if (dec->max_scans > 0 && d->input_scan_number > dec->max_scans) {
        ic_set_status(dec->err.st, IC_ERR_LIMIT, "more than %d scans in a progressive JPEG", dec->max_scans);
        longjmp(dec->err.jump, 1);
    }
}

ic_jpeg_decoder *ic_jpeg_open(const uint8_t *data, size_t size, const ic_jpeg_limits *limits,
                              ic_jpeg_info *info, ic_status *st) {
    memset(info, 0, sizeof *info);
    ic_set_status(st, IC_OK, "");
    if (data == NULL || size == 0) {
        ic_set_status(st, IC_ERR_TRUNCATED, "empty input");
        return NULL;
    }
    ic_jpeg_decoder *dec = calloc(1, sizeof *dec);
    if (dec == NULL) {
        ic_set_status(st, IC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    init_err(&dec->err, st, limits->max_warnings);
    dec->max_scans = limits->max_scans;
    dec->cinfo.err = &dec->err.pub;
    dec->cinfo.client_data = dec;
    if (setjmp(dec->err.jump)) {
        // Report what the header said even on failure (e.g. a 12-bit file's precision).
        info->precision = dec->cinfo.data_precision;
        info->width = (int)dec->cinfo.image_width;
        info->height = (int)dec->cinfo.image_height;
        jpeg_destroy_decompress(&dec->cinfo);
        free(dec);
        return NULL;
    }
    jpeg_create_decompress(&dec->cinfo); // keeps err and client_data
    if (limits->max_memory > 0) dec->cinfo.mem->max_memory_to_use = (long)limits->max_memory;
    dec->progress.progress_monitor = progress_monitor;
    dec->cinfo.progress = &dec->progress;
    jpeg_mem_src(&dec->cinfo, data, (unsigned long)size);
    jpeg_save_markers(&dec->cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&dec->cinfo, TRUE);

    info->width = (int)dec->cinfo.image_width;
    info->height = (int)dec->cinfo.image_height;
    info->components = dec->cinfo.num_components;
    info->precision = dec->cinfo.data_precision;
    info->color_space = (int)dec->cinfo.jpeg_color_space;
    info->progressive = dec->cinfo.progressive_mode ? 1 : 0;
    info->arithmetic = dec->cinfo.arith_code ? 1 : 0;
    for (jpeg_saved_marker_ptr m = dec->cinfo.marker_list; m != NULL; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0) {
            info->exif = m->data + 6;
            info->exif_size = m->data_length - 6;
            break;
        }
    }
    dec->err.st = &dec->idle;
    return dec;
}

static void cmyk_to_rgba(uint8_t *p, size_t pixels, int inverted) {
    for (size_t i = 0; i < pixels; i++, p += 4) {
        unsigned c = p[0], m = p[1], y = p[2], k = p[3];
        if (!inverted) { c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k; }
        // Stored (inverted) values are 255 - ink, so colour = value * (255 - k_ink) / 255.
        p[0] = (uint8_t)((c * k + 127) / 255);
        p[1] = (uint8_t)((m * k + 127) / 255);
        p[2] = (uint8_t)((y * k + 127) / 255);
        p[3] = 255;
    }
}

// Runs body with libjpeg's errors jumping back here. setjmp must be in a frame that is still live when libjpeg
// calls error_exit, so every decoding entry point goes through this one; errors go to the caller's status during
// the call and to `idle` after it, so a late libjpeg message never writes to a dead stack frame.
static ic_code guarded(ic_jpeg_decoder *dec, ic_status *st, ic_code (*body)(ic_jpeg_decoder *, void *), void *args) {
    dec->err.st = st;
    if (setjmp(dec->err.jump)) {
        dec->unusable = 1;
        dec->err.st = &dec->idle;
        return st->code;
    }
    ic_code code = body(dec, args);
    dec->err.st = &dec->idle;
    return code;
}

static ic_code fail(ic_jpeg_decoder *dec, ic_status *st, ic_code code, const char *message) {
    ic_set_status(st, code, "%s", message);
    dec->unusable = 1;
    return code;
}

typedef struct start_args {
    int scale_num, block_smoothing;
    int *out_width, *out_height;
    ic_status *st;
} start_args;

static ic_code start_body(ic_jpeg_decoder *dec, void *raw) {
    start_args *a = raw;
    j_decompress_ptr cinfo = &dec->cinfo;
    cinfo->scale_num = (unsigned)a->scale_num;
    cinfo->scale_denom = 8;
    cinfo->do_block_smoothing = a->block_smoothing ? TRUE : FALSE;
    switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB:
        cinfo->out_color_space = JCS_EXT_RGBA; // libjpeg-turbo converts straight to RGBA, alpha 255
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        cinfo->out_color_space = JCS_CMYK; // libjpeg does YCCK -> CMYK; CMYK -> RGB in read_rows_body
        dec->cmyk = 1;
        break;
    default:
        ic_set_status(a->st, IC_ERR_UNSUPPORTED, "unsupported JPEG colour space with %d components",
                   cinfo->num_components);
        dec->unusable = 1;
        return IC_ERR_UNSUPPORTED;
    }
    jpeg_start_decompress(cinfo); // a progressive file's scans are all read here
    if (cinfo->output_components != 4) {
        jpeg_abort_decompress(cinfo);
        return fail(dec, a->st, IC_ERR_ARGUMENT, "decoder did not give 4 components");
    }
    dec->started = 1;
    *a->out_width = (int)cinfo->output_width;
    *a->out_height = (int)cinfo->output_height;
    return IC_OK;
}

ic_code ic_jpeg_start(ic_jpeg_decoder *dec, int scale_num, int block_smoothing, int *out_width, int *out_height,
                      ic_status *st) {
    *out_width = 0;
    *out_height = 0;
    ic_set_status(st, IC_OK, "");
    if (dec == NULL || dec->unusable || dec->started || scale_num < 1 || scale_num > 8) {
        ic_set_status(st, IC_ERR_ARGUMENT, "decoder not usable");
        return st->code;
    }
    start_args a = {scale_num, block_smoothing, out_width, out_height, st};
    return guarded(dec, st, start_body, &a);
}

typedef struct read_args {
    uint8_t *dst;
    int max_rows;
    int *rows;
    ic_status *st;
} read_args;

static ic_code read_rows_body(ic_jpeg_decoder *dec, void *raw) {
    read_args *a = raw;
    j_decompress_ptr cinfo = &dec->cinfo;
    size_t stride = (size_t)cinfo->output_width * 4;
    int done = 0;
    while (done < a->max_rows && cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW ptrs[16];
        JDIMENSION n = (JDIMENSION)(a->max_rows - done);
        if (n > 16) n = 16;
        for (JDIMENSION i = 0; i < n; i++) ptrs[i] = a->dst + (size_t)(done + (int)i) * stride;
        JDIMENSION got = jpeg_read_scanlines(cinfo, ptrs, n);
        if (got == 0) { // cannot happen with a memory source; never spin
            jpeg_abort_decompress(cinfo);
            return fail(dec, a->st, IC_ERR_CORRUPT, "JPEG decoder made no progress");
        }
        done += (int)got;
    }
    if (dec->cmyk) cmyk_to_rgba(a->dst, (size_t)cinfo->output_width * (size_t)done, cinfo->saw_Adobe_marker);
    *a->rows = done;
    if (cinfo->output_scanline >= cinfo->output_height) {
        // Skip jpeg_finish_decompress: nothing after the image is needed, and trailing junk must not cost time.
        jpeg_abort_decompress(cinfo);
        dec->unusable = 1; // one decode per open
    }
    return IC_OK;
}

ic_code ic_jpeg_read_rows(ic_jpeg_decoder *dec, uint8_t *dst, int max_rows, int *rows, ic_status *st) {
    *rows = 0;
    ic_set_status(st, IC_OK, "");
    if (dec == NULL || dec->unusable || !dec->started || max_rows < 1) {
        ic_set_status(st, IC_ERR_ARGUMENT, "decoder not usable");
        return st->code;
    }
    read_args a = {dst, max_rows, rows, st};
    return guarded(dec, st, read_rows_body, &a);
}

int ic_jpeg_damaged(const ic_jpeg_decoder *dec) { return dec != NULL && dec->err.damaged; }

void ic_jpeg_close(ic_jpeg_decoder *dec) {
    if (dec == NULL) return;
    jpeg_destroy_decompress(&dec->cinfo);
    free(dec);
}

// MARK: DC-only stream

typedef struct ic_buf {
    uint8_t *p;
    size_t len, cap;
} ic_buf;

static int buf_append(ic_buf *b, const uint8_t *src, size_t n) {
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 65536;
        while (n > cap - b->len) {
            if (cap > SIZE_MAX / 2) return 0;
            cap *= 2;
        }
        uint8_t *p = realloc(b->p, cap);
        if (p == NULL) return 0;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return 1;
}

// End of entropy-coded data starting at p: the next 0xFF that starts a real marker (not a stuffed 0x00, a restart
// marker or a fill byte). Returns size when the data runs to the end.
static size_t entropy_end(const uint8_t *d, size_t size, size_t p) {
    while (p < size) {
        const uint8_t *ff = memchr(d + p, 0xFF, size - p);
        if (ff == NULL) return size;
        p = (size_t)(ff - d);
        if (p + 1 >= size) return size;
        uint8_t b = d[p + 1];
        if (b == 0x00 || (b >= 0xD0 && b <= 0xD7)) { p += 2; continue; }
        if (b == 0xFF) { p += 1; continue; } // fill byte before a marker
        return p;
    }
    return size;
}

uint8_t *ic_jpeg_dc_only_stream(ic_jpeg_decoder *dec, const uint8_t *d, size_t size, size_t *out_size) {
    *out_size = 0;
    if (dec == NULL || dec->unusable || d == NULL || size < 4 || d[0] != 0xFF || d[1] != 0xD8) return NULL;
    j_decompress_ptr cinfo = &dec->cinfo;
    if (!cinfo->progressive_mode || cinfo->arith_code) return NULL;
    // Which components libjpeg decodes with a 1x1 IDCT at 1/8: for those only DC matters. Subsampled chroma is
    // often decoded with a larger IDCT instead of being upsampled (4:2:0 -> 2x2), so its AC scans stay.
    dec->err.st = &dec->idle;
    if (setjmp(dec->err.jump)) {
        dec->unusable = 1;
        return NULL;
    }
    cinfo->scale_num = 1;
    cinfo->scale_denom = 8;
    jpeg_calc_output_dimensions(cinfo);
    int dc_only[256] = {0}, any = 0;
    for (int i = 0; i < cinfo->num_components; i++) {
        if (cinfo->comp_info[i].DCT_scaled_size == 1) {
            dc_only[cinfo->comp_info[i].component_id & 0xFF] = 1;
            any = 1;
        }
    }
    if (!any) return NULL;
    ic_buf b = {0};
    static const uint8_t soi[2] = {0xFF, 0xD8}, eoi[2] = {0xFF, 0xD9};
    if (!buf_append(&b, soi, 2)) goto fail;
    int progressive = 0;
    size_t p = 2;
    while (p < size) {
        if (d[p] != 0xFF) { p++; continue; } // junk between segments: libjpeg skips it too
        while (p < size && d[p] == 0xFF) p++;
        if (p >= size) break;
        uint8_t m = d[p++];
        if (m == 0xD9) break;                                      // EOI
        if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue; // no length; stray outside a scan
        if (size - p < 2) break;
        size_t len = ((size_t)d[p] << 8) | d[p + 1];
        if (len < 2 || len > size - p) break; // truncated segment: stop, libjpeg sees a short stream
        int is_sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
        if (is_sof) {
            if (m != 0xC2) goto fail; // only progressive Huffman
            progressive = 1;
        }
        if (m == 0xDA) {
            if (!progressive || len < 6) goto fail;
            size_t ns = d[p + 2];
            if (len != 6 + 2 * ns) goto fail;
            uint8_t ss = d[p + 3 + 2 * ns];
            size_t data_start = p + len;
            size_t data_end = entropy_end(d, size, data_start);
            // Progressive AC scans have one component; drop those of DC-only components.
            int drop = ss != 0 && ns == 1 && dc_only[d[p + 3]];
            if (!drop) {
                uint8_t hdr[2] = {0xFF, m};
                if (!buf_append(&b, hdr, 2) || !buf_append(&b, d + p, data_end - p)) goto fail;
            }
            p = data_end;
            continue;
        }
        uint8_t hdr[2] = {0xFF, m};
        if (!buf_append(&b, hdr, 2) || !buf_append(&b, d + p, len)) goto fail;
        p += len;
    }
    if (!progressive || !buf_append(&b, eoi, 2)) goto fail;
    *out_size = b.len;
    return b.p;
fail:
    free(b.p);
    return NULL;
}

// MARK: Encoder

typedef struct ic_jpeg_enc {
    struct jpeg_compress_struct cinfo;
    ic_jpeg_err err;
    struct jpeg_destination_mgr dest;
    ic_buf out; // our own growing buffer (not jpeg_mem_dest), so it can be freed safely after an error
} ic_jpeg_enc;

#define IC_DEST_CHUNK 16384

static int dest_reserve(ic_jpeg_enc *enc) {
    ic_buf *b = &enc->out;
    if (b->cap - b->len < IC_DEST_CHUNK) {
        size_t cap = b->cap ? b->cap * 2 : 4 * IC_DEST_CHUNK;
        uint8_t *p = realloc(b->p, cap);
        if (p == NULL) return 0;
        b->p = p;
        b->cap = cap;
    }
    enc->dest.next_output_byte = b->p + b->len;
    enc->dest.free_in_buffer = b->cap - b->len;
    return 1;
}

static void dest_init(j_compress_ptr cinfo) {
    ic_jpeg_enc *enc = (ic_jpeg_enc *)cinfo->client_data;
    if (!dest_reserve(enc)) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 10);
}

static boolean dest_empty(j_compress_ptr cinfo) { // called when the whole free space is used
    ic_jpeg_enc *enc = (ic_jpeg_enc *)cinfo->client_data;
    enc->out.len = enc->out.cap;
    if (!dest_reserve(enc)) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 10);
    return TRUE;
}

static void dest_term(j_compress_ptr cinfo) {
    ic_jpeg_enc *enc = (ic_jpeg_enc *)cinfo->client_data;
    enc->out.len = enc->out.cap - enc->dest.free_in_buffer;
}

// pixels: 4 bytes a pixel, RGBX (written as YCbCr 4:2:0) or CMYK (written as Adobe CMYK or YCCK, 4:4:4:4).
static ic_code encode(const uint8_t *rgba, int width, int height, J_COLOR_SPACE in_space, J_COLOR_SPACE jpeg_space,
                      int quality, int progressive, uint8_t **out, size_t *out_size, ic_status *st) {
    *out = NULL;
    *out_size = 0;
    ic_set_status(st, IC_OK, "");
    if (rgba == NULL || width <= 0 || height <= 0 || width > 65500 || height > 65500) {
        ic_set_status(st, IC_ERR_ARGUMENT, "invalid image size %dx%d for JPEG", width, height);
        return st->code;
    }
    ic_jpeg_enc *enc = calloc(1, sizeof *enc); // on the heap: fields stay valid across longjmp
    if (enc == NULL) {
        ic_set_status(st, IC_ERR_NOMEM, "out of memory");
        return st->code;
    }
    init_err(&enc->err, st, 0);
    enc->cinfo.err = &enc->err.pub;
    if (setjmp(enc->err.jump)) {
        jpeg_destroy_compress(&enc->cinfo);
        free(enc->out.p);
        free(enc);
        return st->code;
    }
    jpeg_create_compress(&enc->cinfo);
    enc->cinfo.client_data = enc;
    enc->dest.init_destination = dest_init;
    enc->dest.empty_output_buffer = dest_empty;
    enc->dest.term_destination = dest_term;
    enc->cinfo.dest = &enc->dest;
    enc->cinfo.image_width = (JDIMENSION)width;
    enc->cinfo.image_height = (JDIMENSION)height;
    enc->cinfo.input_components = 4;
    enc->cinfo.in_color_space = in_space;
    jpeg_set_defaults(&enc->cinfo);
    jpeg_set_colorspace(&enc->cinfo, jpeg_space); // CMYK/YCCK also get the Adobe marker
    jpeg_set_quality(&enc->cinfo, quality, TRUE);
    for (int i = 0; i < enc->cinfo.num_components; i++) {
        int luma = i == 0 && jpeg_space == JCS_YCbCr;
        enc->cinfo.comp_info[i].h_samp_factor = luma ? 2 : 1; // 4:2:0 for YCbCr
        enc->cinfo.comp_info[i].v_samp_factor = luma ? 2 : 1;
    }
    enc->cinfo.optimize_coding = TRUE;
    if (progressive) jpeg_simple_progression(&enc->cinfo);
    jpeg_start_compress(&enc->cinfo, TRUE);
    size_t stride = (size_t)width * 4;
    while (enc->cinfo.next_scanline < enc->cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(rgba + (size_t)enc->cinfo.next_scanline * stride);
        jpeg_write_scanlines(&enc->cinfo, &row, 1);
    }
    jpeg_finish_compress(&enc->cinfo);
    *out = enc->out.p;
    *out_size = enc->out.len;
    jpeg_destroy_compress(&enc->cinfo);
    free(enc);
    return IC_OK;
}

ic_code ic_jpeg_encode_rgba(const uint8_t *rgba, int width, int height, int quality, int progressive,
                            uint8_t **out, size_t *out_size, ic_status *st) {
    return encode(rgba, width, height, JCS_EXT_RGBX, JCS_YCbCr, quality, progressive, out, out_size, st);
}

ic_code ic_jpeg_encode_cmyk(const uint8_t *cmyk, int width, int height, int quality, int ycck,
                            uint8_t **out, size_t *out_size, ic_status *st) {
    return encode(cmyk, width, height, JCS_CMYK, ycck ? JCS_YCCK : JCS_CMYK, quality, 0, out, out_size, st);
}
