// Thin C wrappers over libjpeg(-turbo), libpng, giflib, libwebp(+demux) and libheif for the Thumbnailer module.
//
// libjpeg and libpng report errors with longjmp. Every function here sets its own jump point, so a longjmp never
// crosses a Swift frame; giflib, libwebp and libheif return error codes (libheif's C++ exceptions stay inside it).
// Errors come back as an ic_code plus a short message, and nothing is printed to stderr or exits the process.
// Decoding is split into open (header only, no large allocation) and read (pixels into a caller-provided RGBA
// buffer; for HEIF, libheif's own), so the caller can check dimensions against its limits in between.
#ifndef IMAGE_CODECS_H
#define IMAGE_CODECS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ic_code {
    IC_OK = 0,
    IC_ERR_UNSUPPORTED = 1, // valid file using a feature we do not decode (e.g. 12-bit JPEG)
    IC_ERR_CORRUPT = 2,     // the codec rejected the data
    IC_ERR_TRUNCATED = 3,   // data ended before anything decodable
    IC_ERR_LIMIT = 4,       // a safety limit was hit (dimensions, scans, decoder memory)
    IC_ERR_NOMEM = 5,       // allocation failed
    IC_ERR_ARGUMENT = 6     // caller error (bad buffer size, wrong call order)
} ic_code;

typedef struct ic_status {
    ic_code code;
    char message[192];
} ic_status;

// MARK: JPEG

typedef struct ic_jpeg_limits {
    uint64_t max_memory;  // cinfo->mem->max_memory_to_use (coefficient buffers of progressive files); 0 = none
    int max_scans;        // refuse files with more scans than this (hostile progressive files); 0 = none
    int max_warnings;     // refuse after this many corrupt-data warnings; 0 = none
} ic_jpeg_limits;

typedef struct ic_jpeg_info {
    int width, height;       // full image size from SOF
    int components;          // 1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK
    int precision;           // bits per sample; also set when open fails on a 12-bit file
    int color_space;         // libjpeg J_COLOR_SPACE of the file
    int progressive;
    int arithmetic;
    const uint8_t *exif;     // APP1 "Exif\0\0" payload after the 6-byte header (TIFF data), or NULL
    size_t exif_size;        // valid until ic_jpeg_close
} ic_jpeg_info;

typedef struct ic_jpeg_decoder ic_jpeg_decoder;

// Reads the header of the JPEG in data[0..<size] (which must outlive the decoder). On failure returns NULL,
// fills *st and, when the SOF was reached, info->precision and the dimensions.
ic_jpeg_decoder *ic_jpeg_open(const uint8_t *data, size_t size, const ic_jpeg_limits *limits,
                              ic_jpeg_info *info, ic_status *st);
// Starts decoding at scale_num/8 (1...8) to RGBA, alpha 255; sets the output size. A progressive file's scans are
// all read here. block_smoothing: 0 disables libjpeg's smoothing of missing progressive coefficients (needed for
// DC-only streams). One decode per open.
ic_code ic_jpeg_start(ic_jpeg_decoder *dec, int scale_num, int block_smoothing, int *out_width, int *out_height,
                      ic_status *st);
// Decodes the next rows, at most max_rows of out_width * 4 bytes each, contiguous from dst; *rows is how many. Call
// it until out_height rows are read; after the last row, or after an error, the decoder can only be closed. Data that
// ended early or was damaged still gives every row (missing parts are grey, as libjpeg leaves them): see
// ic_jpeg_damaged.
ic_code ic_jpeg_read_rows(ic_jpeg_decoder *dec, uint8_t *dst, int max_rows, int *rows, ic_status *st);
// 1 when data was missing or damaged so far (the image is partial).
int ic_jpeg_damaged(const ic_jpeg_decoder *dec);
void ic_jpeg_close(ic_jpeg_decoder *dec);

// For a progressive Huffman JPEG decoded at 1/8 scale, components decoded with a 1x1 IDCT (luma; all of them
// without chroma subsampling) need only their DC coefficients, so their AC scans, most of the file, can be dropped
// before libjpeg sees them. dec is the opened decoder of the same data (its header tells which components);
// decode the result with block smoothing off and it gives the same pixels at 1/8 as the whole file. Returns a new
// malloc'd stream, or NULL when not applicable (not progressive Huffman, nothing to drop) or on allocation
// failure. Free with ic_free.
uint8_t *ic_jpeg_dc_only_stream(ic_jpeg_decoder *dec, const uint8_t *data, size_t size, size_t *out_size);

// Encodes RGBA (alpha ignored) as a JPEG with 4:2:0 chroma; progressive via jpeg_simple_progression.
// *out is malloc'd (free with ic_free).
ic_code ic_jpeg_encode_rgba(const uint8_t *rgba, int width, int height, int quality, int progressive,
                            uint8_t **out, size_t *out_size, ic_status *st);

// Encodes CMYK samples as stored (Adobe files keep them inverted: 255 = no ink) as an Adobe CMYK or YCCK JPEG,
// baseline 4:4:4:4. For tests of the CMYK/YCCK decode paths (no common tool writes plain CMYK).
ic_code ic_jpeg_encode_cmyk(const uint8_t *cmyk, int width, int height, int quality, int ycck,
                            uint8_t **out, size_t *out_size, ic_status *st);

// MARK: PNG

typedef struct ic_png_limits {
    uint32_t max_width, max_height; // png_set_user_limits
    uint64_t max_pixels;            // checked on the IHDR before libpng allocates anything
    uint64_t max_chunk_bytes;       // png_set_chunk_malloc_max (ancillary chunks, decompressed text/iCCP)
    uint32_t max_chunks;            // png_set_chunk_cache_max (number of ancillary chunks kept)
} ic_png_limits;

typedef struct ic_png_info {
    uint32_t width, height;   // also set when open fails on the size limits
    int bit_depth;
    int color_type;
    int interlaced;
    int has_alpha;            // alpha channel or tRNS
} ic_png_info;

typedef struct ic_png_decoder ic_png_decoder;

// Reads the chunks before the image data. data must outlive the decoder.
ic_png_decoder *ic_png_open(const uint8_t *data, size_t size, const ic_png_limits *limits,
                            ic_png_info *info, ic_status *st);
// Decodes the first (default) image as 8-bit RGBA into dst (width * height * 4 bytes). 16-bit samples keep their
// high byte (png_set_strip_16). A file that ends after at least one row of a non-interlaced image gives a
// partial image (*partial = 1, the rest opaque grey).
ic_code ic_png_read_rgba(ic_png_decoder *dec, uint8_t *dst, size_t dst_size, int *partial, ic_status *st);
void ic_png_close(ic_png_decoder *dec);

// Encodes RGBA as an 8-bit RGBA PNG. *out is malloc'd (free with ic_free).
ic_code ic_png_encode_rgba(const uint8_t *rgba, int width, int height, int compression_level,
                           uint8_t **out, size_t *out_size, ic_status *st);

// MARK: GIF (giflib)

typedef struct ic_gif_info {
    int screen_width, screen_height; // logical screen from the header
    int width, height;               // canvas the first frame is drawn on: the screen, or the frame's own size when
                                     // it does not fit in the screen (as browsers do)
    int frame_left, frame_top;       // first frame's place on the canvas
    int frame_width, frame_height;
    int interlaced;
    int may_have_alpha;              // a transparent colour index, or the frame does not cover the canvas
} ic_gif_info;

typedef struct ic_gif_decoder ic_gif_decoder;

// Reads the header and the records up to the first frame's descriptor (colour tables only). data must outlive
// the decoder.
ic_gif_decoder *ic_gif_open(const uint8_t *data, size_t size, ic_gif_info *info, ic_status *st);
// Decodes the first frame onto a transparent canvas (width * height * 4 bytes of non-premultiplied RGBA). A
// non-interlaced frame whose data ends early after at least one row gives a partial image (*partial = 1, the
// frame's missing rows opaque grey). One read per open.
ic_code ic_gif_read_rgba(ic_gif_decoder *dec, uint8_t *dst, size_t dst_size, int *partial, ic_status *st);
void ic_gif_close(ic_gif_decoder *dec);
// Counts the frames (image descriptors) without decoding them, in constant memory, stopping at max_frames.
// *complete = 1 when the count reached the end of the file; 0 when it stopped at max_frames or at damaged data
// (then *frames is a lower bound).
ic_code ic_gif_count_frames(const uint8_t *data, size_t size, int max_frames, int *frames, int *complete,
                            ic_status *st);

// MARK: WebP (libwebp, libwebpdemux)

typedef struct ic_webp_info {
    int width, height;     // the canvas (animated) or the image
    int has_alpha;
    int animated;
    int frames;            // 1 for a still image; ANMF chunks counted up to max_frames otherwise
    int frames_complete;   // 0 when counting stopped at max_frames or at a chunk running past the data
} ic_webp_info;

typedef struct ic_webp_decoder ic_webp_decoder;

// Reads the headers and, for an animated file, finds the first frame (the demuxer sees only the bytes up to its
// end, so its bookkeeping does not grow with the frame count). data must outlive the decoder.
ic_webp_decoder *ic_webp_open(const uint8_t *data, size_t size, int max_frames, ic_webp_info *info, ic_status *st);
// Decodes a still image, or an animation's first frame on its transparent canvas, to non-premultiplied RGBA
// (out_width * 4 bytes a row, dst_size = out_width * out_height * 4). A still image may be scaled down by libwebp
// while it decodes (out size below the image's); an animation must be read at full size.
ic_code ic_webp_read_rgba(ic_webp_decoder *dec, uint8_t *dst, size_t dst_size, int out_width, int out_height,
                          ic_status *st);
void ic_webp_close(ic_webp_decoder *dec);

// MARK: HEIF (libheif)

typedef struct ic_heif_info {
    int width, height;               // as displayed: after the file's own irot/imir/clap transforms
    int stored_width, stored_height; // coded size (ispe), what the decoder allocates
    int has_alpha;
    int bit_depth;                   // luma bits per sample (8, 10, 12); decoded to 8 bits
} ic_heif_info;

typedef struct ic_heif_decoder ic_heif_decoder;

// 1 when data starts like a HEIC/HEIF still-image file libheif reads (libheif's brand check; not AVIF, not an
// image sequence).
int ic_heif_sniff(const uint8_t *data, size_t size);
// Parses the boxes and takes the primary image. Sides over max_dimension are refused by libheif itself (a
// security limit, IC_ERR_LIMIT). data must outlive the decoder, until ic_heif_decode returns.
ic_heif_decoder *ic_heif_open(const uint8_t *data, size_t size, int max_dimension, ic_heif_info *info,
                              ic_status *st);
// Decodes the primary image to 8-bit RGB(A) with libheif's transforms applied (upright; an EXIF orientation in
// the file is not applied: HEIF's irot/imir are authoritative), at info's width x height. libheif holds the
// pixels: copy them out with ic_heif_read_rows. Afterwards the input bytes are no longer needed. One decode per open.
ic_code ic_heif_decode(ic_heif_decoder *dec, ic_status *st);
// Copies rows [first_row, first_row + rows) of the decoded image into dst as RGBA, rows of width * 4 bytes,
// contiguous (alpha 255 when the image has none).
ic_code ic_heif_read_rows(const ic_heif_decoder *dec, int first_row, int rows, uint8_t *dst, size_t dst_size,
                          ic_status *st);
void ic_heif_close(ic_heif_decoder *dec);

// Encodes RGBA (alpha ignored) as HEIC with libheif's HEVC encoder; orientation (1...8, EXIF numbering) is
// written as irot/imir boxes, exif (TIFF data, may be NULL) as the image's Exif item. For tests of the transform
// paths: heif-enc 1.15 writes no irot/imir (it keeps a JPEG's EXIF orientation as it is). *out is malloc'd.
ic_code ic_heif_encode_rgba(const uint8_t *rgba, int width, int height, int quality, int orientation,
                            const uint8_t *exif, size_t exif_size, uint8_t **out, size_t *out_size, ic_status *st);

void ic_free(void *p);

#ifdef __cplusplus
}
#endif

#endif
