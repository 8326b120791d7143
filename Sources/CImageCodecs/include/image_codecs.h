#pragma once
// PNG (libpng) and JPEG (libjpeg-turbo) codecs for the Imaging target.
//
// Every libpng/libjpeg error is caught with setjmp inside this file and returned as a status code plus
// a message: nothing longjmps through the caller, nothing aborts, and library warnings are not printed.
// Decoders read the header first and refuse images whose width * height exceeds max_pixels before
// allocating the pixel buffer.

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    IC_OK = 0,
    IC_ERR_ARGUMENT = 1,     // a NULL pointer, zero size, bad channel count or compression level
    IC_ERR_CORRUPT = 2,      // malformed or truncated data (bad signature, CRC, Huffman data, ...)
    IC_ERR_TOO_LARGE = 3,    // width * height > max_pixels (checked before the pixel buffer is allocated)
    IC_ERR_UNSUPPORTED = 4,  // valid but unsupported (e.g. a JPEG colour space other than gray/RGB/YCbCr/CMYK/YCCK)
    IC_ERR_NO_MEMORY = 5,
};

typedef struct {
    uint32_t width;
    uint32_t height;
    uint32_t channels;   // 1 (gray), 3 (RGB) or 4 (RGBA), always 8 bits per sample
    int32_t has_alpha;   // 1 iff the file carried alpha (an alpha channel or a PNG tRNS chunk); then channels == 4
    uint8_t *pixels;     // width * height * channels bytes, rows top to bottom; release with ic_free
} ic_image;

// PNG: gray, gray+alpha, RGB, RGBA, palette (tRNS -> alpha), 1/2/4/8/16 bit, interlaced or not.
// Output: gray stays 1 channel; gray+alpha and anything with tRNS become RGBA; palette becomes RGB/RGBA.
// 16-bit samples keep their high byte (as Pillow's 8-bit modes do). Gamma chunks are ignored.
int32_t ic_png_decode(const uint8_t *data, size_t size, uint64_t max_pixels, ic_image *out,
                      char *message, size_t message_capacity);

// JPEG: grayscale -> 1 channel; YCbCr/RGB -> RGB; CMYK/YCCK -> RGB with Pillow's conversion
// (samples treated as Adobe-inverted CMYK, as Pillow assumes). Truncated data is an error.
int32_t ic_jpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels, ic_image *out,
                       char *message, size_t message_capacity);

// PNG encode of 8-bit gray (1), RGB (3) or RGBA (4) pixels; compression_level 0...9 (zlib).
// On success *out_data (release with ic_free) holds *out_size bytes.
int32_t ic_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height, uint32_t channels,
                      int32_t compression_level, uint8_t **out_data, size_t *out_size,
                      char *message, size_t message_capacity);

void ic_free(void *pointer);

#ifdef __cplusplus
}
#endif
