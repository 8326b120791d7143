#include "image_codecs.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <jpeglib.h>
#include <jerror.h>

// A progressive JPEG may hold any number of scans, each a full pass over the coefficients; real
// encoders write about 10. More than this is a CPU-exhaustion attempt.
#define IC_JPEG_MAX_SCANS 1000

static void set_message(char *message, size_t capacity, const char *format, ...) {
    if (message == NULL || capacity == 0) return;
    va_list args;
    va_start(args, format);
    vsnprintf(message, capacity, format, args);
    va_end(args);
}

static void reset_image(ic_image *out) {
    out->width = 0;
    out->height = 0;
    out->channels = 0;
    out->has_alpha = 0;
    out->pixels = NULL;
}

void ic_free(void *pointer) { free(pointer); }

// MARK: - PNG decode

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t offset;
    int32_t code;  // status to return once libpng longjmps back
    char *message;
    size_t message_capacity;
} png_context;

static void png_error_handler(png_structp png, png_const_charp text) {
    png_context *context = (png_context *)png_get_error_ptr(png);
    if (context->code == IC_OK) context->code = IC_ERR_CORRUPT;
    set_message(context->message, context->message_capacity, "PNG: %s", text);
    png_longjmp(png, 1);
}

static void png_warning_handler(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;  // warnings (bad ancillary chunks, ...) are not errors and must not reach stderr
}

static void png_read_from_memory(png_structp png, png_bytep destination, size_t length) {
    png_context *context = (png_context *)png_get_io_ptr(png);
    if (length > context->size - context->offset) {
        png_error(png, "unexpected end of data (truncated file)");
    }
    memcpy(destination, context->data + context->offset, length);
    context->offset += length;
}

int32_t ic_png_decode(const uint8_t *data, size_t size, uint64_t max_pixels, ic_image *out,
                      char *message, size_t message_capacity) {
    if (out == NULL) return IC_ERR_ARGUMENT;
    reset_image(out);
    set_message(message, message_capacity, "%s", "");
    if (data == NULL || size == 0) {
        set_message(message, message_capacity, "PNG: empty input");
        return IC_ERR_ARGUMENT;
    }
    if (size < 8 || png_sig_cmp((png_const_bytep)data, 0, 8) != 0) {
        set_message(message, message_capacity, "PNG: missing PNG signature");
        return IC_ERR_CORRUPT;
    }

    png_context context = {data, size, 0, IC_OK, message, message_capacity};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &context, png_error_handler, png_warning_handler);
    if (png == NULL) {
        set_message(message, message_capacity, "PNG: cannot create decoder");
        return IC_ERR_NO_MEMORY;
    }
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        set_message(message, message_capacity, "PNG: cannot create decoder");
        return IC_ERR_NO_MEMORY;
    }

    // Modified after setjmp and read after longjmp: must be volatile.
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;

    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return context.code == IC_OK ? IC_ERR_CORRUPT : context.code;
    }

    png_set_read_fn(png, &context, png_read_from_memory);
    // Dimension policy is max_pixels, applied below; lift libpng's own 1,000,000-per-side default.
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_read_info(png, info);

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, NULL, NULL, NULL);
    if ((uint64_t)width * (uint64_t)height > max_pixels) {
        char text[128];
        snprintf(text, sizeof text, "image %ux%u exceeds the limit of %llu pixels",
                 (unsigned)width, (unsigned)height, (unsigned long long)max_pixels);
        context.code = IC_ERR_TOO_LARGE;
        png_error(png, text);  // jumps to the cleanup above, before any pixel allocation
    }

    const int has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    const int has_alpha = (color_type & PNG_COLOR_MASK_ALPHA) != 0 || has_trns;
    if (bit_depth == 16) png_set_strip_16(png);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (has_trns) png_set_tRNS_to_alpha(png);
    if ((color_type & PNG_COLOR_MASK_COLOR) == 0 && has_alpha) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    const uint32_t channels = png_get_channels(png, info);
    const uint32_t expected_channels = has_alpha ? 4 : ((color_type & PNG_COLOR_MASK_COLOR) ? 3 : 1);
    if (channels != expected_channels || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != (size_t)width * channels) {
        context.code = IC_ERR_UNSUPPORTED;
        png_error(png, "unexpected sample layout after conversion to 8 bits");
    }

    const size_t row_bytes = (size_t)width * channels;
    pixels = (uint8_t *)malloc(row_bytes * height);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (pixels == NULL || rows == NULL) {
        context.code = IC_ERR_NO_MEMORY;
        png_error(png, "out of memory for the pixel buffer");
    }
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + (size_t)y * row_bytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);

    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    out->width = width;
    out->height = height;
    out->channels = channels;
    out->has_alpha = has_alpha;
    out->pixels = pixels;
    return IC_OK;
}

// MARK: - JPEG decode

typedef struct {
    struct jpeg_error_mgr base;  // first member: libjpeg hands us a pointer to it
    jmp_buf jump;
    int32_t code;
    int truncated;
    char *message;
    size_t message_capacity;
} jpeg_error_context;

static void jpeg_error_exit_handler(j_common_ptr cinfo) {
    jpeg_error_context *context = (jpeg_error_context *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    if (context->code == IC_OK) context->code = IC_ERR_CORRUPT;
    set_message(context->message, context->message_capacity, "JPEG: %s", text);
    longjmp(context->jump, 1);
}

static void jpeg_emit_message_handler(j_common_ptr cinfo, int level) {
    if (level >= 0) return;  // trace messages
    jpeg_error_context *context = (jpeg_error_context *)cinfo->err;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) context->truncated = 1;
    cinfo->err->num_warnings++;
}

static void jpeg_output_message_handler(j_common_ptr cinfo) { (void)cinfo; }

static void jpeg_fail(j_decompress_ptr cinfo, int32_t code, const char *text) {
    jpeg_error_context *context = (jpeg_error_context *)cinfo->err;
    context->code = code;
    set_message(context->message, context->message_capacity, "JPEG: %s", text);
    longjmp(context->jump, 1);
}

static void jpeg_progress_handler(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    j_decompress_ptr decompress = (j_decompress_ptr)cinfo;
    if (decompress->input_scan_number > IC_JPEG_MAX_SCANS) {
        jpeg_fail(decompress, IC_ERR_CORRUPT, "too many progressive scans");
    }
}

// Pillow's MULDIV255: round(a * b / 255) for bytes.
static inline uint8_t muldiv255(unsigned a, unsigned b) {
    unsigned t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

int32_t ic_jpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels, ic_image *out,
                       char *message, size_t message_capacity) {
    if (out == NULL) return IC_ERR_ARGUMENT;
    reset_image(out);
    set_message(message, message_capacity, "%s", "");
    if (data == NULL || size == 0) {
        set_message(message, message_capacity, "JPEG: empty input");
        return IC_ERR_ARGUMENT;
    }

    struct jpeg_decompress_struct cinfo;
    struct jpeg_progress_mgr progress;
    jpeg_error_context errors;
    memset(&cinfo, 0, sizeof cinfo);
    memset(&errors, 0, sizeof errors);
    cinfo.err = jpeg_std_error(&errors.base);
    errors.base.error_exit = jpeg_error_exit_handler;
    errors.base.emit_message = jpeg_emit_message_handler;
    errors.base.output_message = jpeg_output_message_handler;
    errors.code = IC_OK;
    errors.message = message;
    errors.message_capacity = message_capacity;

    uint8_t *volatile pixels = NULL;
    uint8_t *volatile row = NULL;

    if (setjmp(errors.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(row);
        return errors.code == IC_OK ? IC_ERR_CORRUPT : errors.code;
    }

    jpeg_create_decompress(&cinfo);
    progress.progress_monitor = jpeg_progress_handler;
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    if ((uint64_t)cinfo.image_width * (uint64_t)cinfo.image_height > max_pixels) {
        char text[128];
        snprintf(text, sizeof text, "image %ux%u exceeds the limit of %llu pixels",
                 cinfo.image_width, cinfo.image_height, (unsigned long long)max_pixels);
        jpeg_fail(&cinfo, IC_ERR_TOO_LARGE, text);
    }

    int cmyk = 0;
    switch (cinfo.jpeg_color_space) {
        case JCS_GRAYSCALE: cinfo.out_color_space = JCS_GRAYSCALE; break;
        case JCS_YCbCr:
        case JCS_RGB: cinfo.out_color_space = JCS_RGB; break;
        case JCS_CMYK:
        case JCS_YCCK: cinfo.out_color_space = JCS_CMYK; cmyk = 1; break;
        default: {
            char text[96];
            snprintf(text, sizeof text, "unsupported colour space %d (%d components)",
                     (int)cinfo.jpeg_color_space, cinfo.num_components);
            jpeg_fail(&cinfo, IC_ERR_UNSUPPORTED, text);
        }
    }

    jpeg_start_decompress(&cinfo);
    const uint32_t width = cinfo.output_width, height = cinfo.output_height;
    const uint32_t channels = cmyk ? 3 : (uint32_t)cinfo.output_components;
    if ((uint64_t)width * (uint64_t)height > max_pixels) {
        jpeg_fail(&cinfo, IC_ERR_TOO_LARGE, "output size exceeds the pixel limit");
    }
    if (channels != 1 && channels != 3) jpeg_fail(&cinfo, IC_ERR_UNSUPPORTED, "unexpected output components");
    if (cmyk && cinfo.output_components != 4) jpeg_fail(&cinfo, IC_ERR_UNSUPPORTED, "unexpected CMYK components");

    const size_t row_bytes = (size_t)width * channels;
    pixels = (uint8_t *)malloc(row_bytes * height);
    if (cmyk) row = (uint8_t *)malloc((size_t)width * 4);
    if (pixels == NULL || (cmyk && row == NULL)) jpeg_fail(&cinfo, IC_ERR_NO_MEMORY, "out of memory for the pixel buffer");

    while (cinfo.output_scanline < height) {
        const uint32_t y = cinfo.output_scanline;
        JSAMPROW target = cmyk ? (JSAMPROW)row : (JSAMPROW)(pixels + (size_t)y * row_bytes);
        if (jpeg_read_scanlines(&cinfo, &target, 1) != 1) jpeg_fail(&cinfo, IC_ERR_CORRUPT, "no scanline decoded");
        if (cmyk) {
            // Pillow reads CMYK JPEG samples as inverted ("CMYK;I") and converts with
            // r = (255-k) - (255-k)*c/255 on the un-inverted values.
            uint8_t *rgb = pixels + (size_t)y * row_bytes;
            for (uint32_t x = 0; x < width; x++) {
                const unsigned nk = row[4 * x + 3];  // 255 - (255 - stored k)
                for (int ch = 0; ch < 3; ch++) {
                    const unsigned c = 255u - row[4 * x + ch];
                    const int value = (int)nk - (int)muldiv255(c, nk);
                    rgb[3 * x + ch] = (uint8_t)(value < 0 ? 0 : value);
                }
            }
        }
        if (errors.truncated) jpeg_fail(&cinfo, IC_ERR_CORRUPT, "premature end of data (truncated file)");
    }
    jpeg_finish_decompress(&cinfo);
    if (errors.truncated) jpeg_fail(&cinfo, IC_ERR_CORRUPT, "premature end of data (truncated file)");
    jpeg_destroy_decompress(&cinfo);
    free(row);

    out->width = width;
    out->height = height;
    out->channels = channels;
    out->has_alpha = 0;
    out->pixels = pixels;
    return IC_OK;
}

// MARK: - PNG encode

typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
    int32_t code;
    char *message;
    size_t message_capacity;
} png_sink;

static void png_write_error_handler(png_structp png, png_const_charp text) {
    png_sink *sink = (png_sink *)png_get_error_ptr(png);
    if (sink->code == IC_OK) sink->code = IC_ERR_ARGUMENT;
    set_message(sink->message, sink->message_capacity, "PNG encode: %s", text);
    png_longjmp(png, 1);
}

static void png_write_to_memory(png_structp png, png_bytep bytes, size_t length) {
    png_sink *sink = (png_sink *)png_get_io_ptr(png);
    if (length > sink->capacity - sink->size) {
        size_t capacity = sink->capacity ? sink->capacity : 4096;
        while (capacity - sink->size < length) {
            if (capacity > SIZE_MAX / 2) {
                sink->code = IC_ERR_NO_MEMORY;
                png_error(png, "output too large");
            }
            capacity *= 2;
        }
        uint8_t *grown = (uint8_t *)realloc(sink->data, capacity);
        if (grown == NULL) {
            sink->code = IC_ERR_NO_MEMORY;
            png_error(png, "out of memory for the output");
        }
        sink->data = grown;
        sink->capacity = capacity;
    }
    memcpy(sink->data + sink->size, bytes, length);
    sink->size += length;
}

static void png_flush_memory(png_structp png) { (void)png; }

int32_t ic_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height, uint32_t channels,
                      int32_t compression_level, uint8_t **out_data, size_t *out_size,
                      char *message, size_t message_capacity) {
    set_message(message, message_capacity, "%s", "");
    if (out_data == NULL || out_size == NULL) return IC_ERR_ARGUMENT;
    *out_data = NULL;
    *out_size = 0;
    if (pixels == NULL || width == 0 || height == 0 || width > PNG_UINT_31_MAX || height > PNG_UINT_31_MAX) {
        set_message(message, message_capacity, "PNG encode: empty image or dimensions out of range");
        return IC_ERR_ARGUMENT;
    }
    int color_type;
    switch (channels) {
        case 1: color_type = PNG_COLOR_TYPE_GRAY; break;
        case 3: color_type = PNG_COLOR_TYPE_RGB; break;
        case 4: color_type = PNG_COLOR_TYPE_RGB_ALPHA; break;
        default:
            set_message(message, message_capacity, "PNG encode: %u channels (expected 1, 3 or 4)", channels);
            return IC_ERR_ARGUMENT;
    }
    if (compression_level < 0 || compression_level > 9) {
        set_message(message, message_capacity, "PNG encode: compression level %d outside 0...9", compression_level);
        return IC_ERR_ARGUMENT;
    }

    png_sink sink = {NULL, 0, 0, IC_OK, message, message_capacity};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, png_write_error_handler, png_warning_handler);
    if (png == NULL) return IC_ERR_NO_MEMORY;
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_write_struct(&png, NULL);
        return IC_ERR_NO_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(sink.data);
        return sink.code == IC_OK ? IC_ERR_ARGUMENT : sink.code;
    }
    png_set_write_fn(png, &sink, png_write_to_memory, png_flush_memory);
    png_set_IHDR(png, info, width, height, 8, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, compression_level);
    png_write_info(png, info);
    const size_t row_bytes = (size_t)width * channels;
    for (uint32_t y = 0; y < height; y++) {
        png_write_row(png, (png_const_bytep)(pixels + (size_t)y * row_bytes));
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);

    *out_data = sink.data;
    *out_size = sink.size;
    return IC_OK;
}
