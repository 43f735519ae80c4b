// Thin C wrappers over libjpeg(-turbo) and libpng for the Thumbnailer module.
//
// Both libraries report errors with longjmp. Every function here sets its own jump point, so a longjmp never
// crosses a Swift frame; errors come back as an ic_code plus a short message, and nothing is printed to stderr or
// exits the process. Decoding is split into open (header only, no large allocation) and read (pixels into a
// caller-provided RGBA buffer), so the caller can check dimensions against its limits in between.
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

void ic_free(void *p);

#ifdef __cplusplus
}
#endif

#endif
