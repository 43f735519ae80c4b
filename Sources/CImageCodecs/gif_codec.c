// giflib decode of a GIF's first frame, quiet, with the canvas known before any pixel buffer and frames counted
// without decoding them.
#include "codec_status.h"

#include <gif_lib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// giflib reads through a callback: serve it from memory and note when the data runs out, which giflib reports
// only as a generic read failure.
typedef struct gif_source {
    const uint8_t *data;
    size_t size, pos;
    int ran_out;
} gif_source;

static int gif_read(GifFileType *gif, GifByteType *out, int n) {
    gif_source *src = gif->UserData;
    if (n <= 0) return 0;
    size_t left = src->size - src->pos;
    size_t take = (size_t)n < left ? (size_t)n : left;
    if (take < (size_t)n) src->ran_out = 1;
    memcpy(out, src->data + src->pos, take);
    src->pos += take;
    return (int)take;
}

static void gif_fail(ic_status *st, int error, const gif_source *src) {
    const char *text = GifErrorString(error);
    if (src->ran_out) {
        ic_set_status(st, IC_ERR_TRUNCATED, "GIF data ends early");
        return;
    }
    ic_code code = error == D_GIF_ERR_NOT_ENOUGH_MEM ? IC_ERR_NOMEM : IC_ERR_CORRUPT;
    ic_set_status(st, code, "%s", text ? text : "GIF decoding failed");
}

static GifFileType *gif_open(gif_source *src, ic_status *st) {
    int error = 0;
    GifFileType *gif = DGifOpen(src, gif_read, &error);
    if (gif == NULL) gif_fail(st, error, src);
    return gif;
}

struct ic_gif_decoder {
    GifFileType *gif;
    gif_source src;
    ic_gif_info header;
    int transparent;  // colour index, or NO_TRANSPARENT_COLOR
    int used;
};

void ic_gif_close(ic_gif_decoder *dec) {
    if (dec == NULL) return;
    if (dec->gif) DGifCloseFile(dec->gif, NULL);
    free(dec);
}

// Skips the rest of an extension whose first sub-block was just read.
static int skip_extension(GifFileType *gif, GifByteType *block) {
    while (block != NULL)
        if (DGifGetExtensionNext(gif, &block) == GIF_ERROR) return GIF_ERROR;
    return GIF_OK;
}

ic_gif_decoder *ic_gif_open(const uint8_t *data, size_t size, ic_gif_info *info, ic_status *st) {
    memset(info, 0, sizeof *info);
    ic_set_status(st, IC_OK, "");
    if (data == NULL || size == 0) {
        ic_set_status(st, IC_ERR_TRUNCATED, "empty input");
        return NULL;
    }
    ic_gif_decoder *dec = calloc(1, sizeof *dec);
    if (dec == NULL) {
        ic_set_status(st, IC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    dec->src = (gif_source){ data, size, 0, 0 };
    dec->transparent = NO_TRANSPARENT_COLOR;
    GifFileType *gif = dec->gif = gif_open(&dec->src, st);
    if (gif == NULL) {
        free(dec);
        return NULL;
    }
    info->screen_width = gif->SWidth;
    info->screen_height = gif->SHeight;
    // Extensions before the first image: only the graphic control block (its transparent index) matters. Each
    // costs at least three bytes of input and nothing is kept, so the loop is bounded by the file.
    for (;;) {
        GifRecordType type;
        if (DGifGetRecordType(gif, &type) == GIF_ERROR) goto fail;
        if (type == IMAGE_DESC_RECORD_TYPE) {
            if (DGifGetImageHeader(gif) == GIF_ERROR) goto fail;
            break;
        }
        if (type == TERMINATE_RECORD_TYPE) {
            ic_set_status(st, IC_ERR_CORRUPT, "GIF has no image");
            ic_gif_close(dec);
            return NULL;
        }
        int code;
        GifByteType *block;
        if (DGifGetExtension(gif, &code, &block) == GIF_ERROR) goto fail;
        if (code == GRAPHICS_EXT_FUNC_CODE && block != NULL) {
            GraphicsControlBlock gcb;
            if (DGifExtensionToGCB(block[0], block + 1, &gcb) == GIF_OK) dec->transparent = gcb.TransparentColor;
        }
        if (skip_extension(gif, block) == GIF_ERROR) goto fail;
    }
    const GifImageDesc *frame = &gif->Image;
    if (frame->Width <= 0 || frame->Height <= 0) {
        ic_set_status(st, IC_ERR_CORRUPT, "first GIF frame is empty (%dx%d)", frame->Width, frame->Height);
        ic_gif_close(dec);
        return NULL;
    }
    if (frame->ColorMap == NULL && gif->SColorMap == NULL) {
        ic_set_status(st, IC_ERR_CORRUPT, "GIF has no colour table");
        ic_gif_close(dec);
        return NULL;
    }
    info->frame_width = frame->Width;
    info->frame_height = frame->Height;
    info->interlaced = frame->Interlace ? 1 : 0;
    if ((long)frame->Left + frame->Width <= gif->SWidth && (long)frame->Top + frame->Height <= gif->SHeight) {
        info->width = gif->SWidth;
        info->height = gif->SHeight;
        info->frame_left = frame->Left;
        info->frame_top = frame->Top;
    } else {
        // A first frame outside the logical screen (or a 0x0 screen): browsers show the frame at its own size.
        info->width = frame->Width;
        info->height = frame->Height;
    }
    info->may_have_alpha = dec->transparent != NO_TRANSPARENT_COLOR || info->frame_width != info->width ||
                           info->frame_height != info->height;
    dec->header = *info;
    return dec;

fail:
    gif_fail(st, gif->Error, &dec->src);
    ic_gif_close(dec);
    return NULL;
}

ic_code ic_gif_read_rgba(ic_gif_decoder *dec, uint8_t *dst, size_t dst_size, int *partial, ic_status *st) {
    *partial = 0;
    ic_set_status(st, IC_OK, "");
    if (dec == NULL || dec->used) {
        ic_set_status(st, IC_ERR_ARGUMENT, "decoder not usable");
        return st->code;
    }
    dec->used = 1;
    const ic_gif_info *h = &dec->header;
    const size_t stride = (size_t)h->width * 4;
    if (stride * (size_t)h->height != dst_size) {
        ic_set_status(st, IC_ERR_ARGUMENT, "output buffer size mismatch");
        return st->code;
    }
    GifFileType *gif = dec->gif;
    const ColorMapObject *map = gif->Image.ColorMap ? gif->Image.ColorMap : gif->SColorMap;
    uint8_t palette[256][4];
    for (int i = 0; i < 256; i++) {
        // Indices past the table show black, as browsers do.
        const int inside = i < map->ColorCount;
        palette[i][0] = inside ? map->Colors[i].Red : 0;
        palette[i][1] = inside ? map->Colors[i].Green : 0;
        palette[i][2] = inside ? map->Colors[i].Blue : 0;
        palette[i][3] = i == dec->transparent ? 0 : 255;
    }
    GifPixelType *line = malloc((size_t)h->frame_width);
    if (line == NULL) {
        ic_set_status(st, IC_ERR_NOMEM, "out of memory");
        return st->code;
    }
    memset(dst, 0, dst_size); // transparent canvas, as browsers start an animation
    // Interlaced frames arrive in four passes: every 8th row from 0, every 8th from 4, every 4th from 2, the rest.
    static const int starts[4] = { 0, 4, 2, 1 }, steps[4] = { 8, 8, 4, 2 };
    const int passes = h->interlaced ? 4 : 1;
    int rows_done = 0;
    for (int pass = 0; pass < passes; pass++) {
        const int start = h->interlaced ? starts[pass] : 0, step = h->interlaced ? steps[pass] : 1;
        for (int y = start; y < h->frame_height; y += step) {
            if (DGifGetLine(gif, line, h->frame_width) == GIF_ERROR) {
                const int cut = dec->src.ran_out || gif->Error == D_GIF_ERR_EOF_TOO_SOON;
                gif_fail(st, gif->Error, &dec->src);
                free(line);
                if (!cut || h->interlaced || rows_done == 0) return st->code;
                // Data ended early: keep the rows we have, the frame's other rows grey (like the PNG and JPEG
                // paths). Damaged LZW data stays an error.
                for (int yy = rows_done; yy < h->frame_height; yy++) {
                    uint8_t *row = dst + (size_t)(h->frame_top + yy) * stride + (size_t)h->frame_left * 4;
                    for (int x = 0; x < h->frame_width; x++) {
                        row[x * 4] = row[x * 4 + 1] = row[x * 4 + 2] = 128;
                        row[x * 4 + 3] = 255;
                    }
                }
                *partial = 1;
                st->code = IC_OK; // the message stays as a note
                return IC_OK;
            }
            uint8_t *row = dst + (size_t)(h->frame_top + y) * stride + (size_t)h->frame_left * 4;
            for (int x = 0; x < h->frame_width; x++) memcpy(row + x * 4, palette[line[x]], 4);
            rows_done++;
        }
    }
    free(line);
    return IC_OK;
}

ic_code ic_gif_count_frames(const uint8_t *data, size_t size, int max_frames, int *frames, int *complete,
                            ic_status *st) {
    *frames = 0;
    *complete = 0;
    ic_set_status(st, IC_OK, "");
    gif_source src = { data, size, 0, 0 };
    if (data == NULL || size == 0) {
        ic_set_status(st, IC_ERR_TRUNCATED, "empty input");
        return st->code;
    }
    GifFileType *gif = gif_open(&src, st);
    if (gif == NULL) return st->code;
    // DGifGetImageHeader, unlike DGifGetImageDesc, keeps no per-frame record, so memory stays constant; each frame
    // costs a pass over its compressed blocks (DGifGetCodeNext only copies them) and an LZW table reset, hence the
    // limit on the count.
    for (;;) {
        GifRecordType type;
        if (DGifGetRecordType(gif, &type) == GIF_ERROR) {
            *complete = src.pos == src.size && src.ran_out; // ends cleanly between records, only the trailer missing
            break;
        }
        if (type == TERMINATE_RECORD_TYPE) {
            *complete = 1;
            break;
        }
        if (type == IMAGE_DESC_RECORD_TYPE) {
            if (*frames == max_frames) break;
            if (DGifGetImageHeader(gif) == GIF_ERROR) break;
            *frames += 1;
            int code_size;
            GifByteType *block;
            if (DGifGetCode(gif, &code_size, &block) == GIF_ERROR) break;
            while (block != NULL)
                if (DGifGetCodeNext(gif, &block) == GIF_ERROR) goto done;
            continue;
        }
        int code;
        GifByteType *block;
        if (DGifGetExtension(gif, &code, &block) == GIF_ERROR || skip_extension(gif, block) == GIF_ERROR) break;
    }
done:
    DGifCloseFile(gif, NULL);
    return IC_OK;
}
