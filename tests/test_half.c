/* Half-precision conversion: every one of the 65536 halves converts to float
 * and back to the same bits, half to float agrees with a formula written
 * independently, float to half matches numpy's float16 rounding bit for bit
 * on ties, subnormals and the overflow edge, and the safetensors reader
 * decodes what od_floats_to_halves wrote. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "io/safetensors.h"
#include "testlib.h"

/* (-1)^s * 2^(e-15) * (1 + m/1024) for normals, 2^-14 * m/1024 for subnormals. */
static double half_value(uint16_t h)
{
    int sign = h >> 15, exponent = (h >> 10) & 31, mantissa = h & 1023;
    double magnitude = exponent == 0 ? ldexp(mantissa, -24) : ldexp(1024 + mantissa, exponent - 25);
    return sign ? -magnitude : magnitude;
}

static void every_half_round_trips(void)
{
    int64_t wrong_value = 0, wrong_bits = 0, wrong_nan = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = od_half_to_float((uint16_t)h);
        int exponent = (h >> 10) & 31, mantissa = h & 1023;
        if (exponent == 31) {
            if (mantissa != 0 && !isnan(f))
                wrong_nan++;
            if (mantissa == 0 && !(isinf(f) && (signbit(f) != 0) == (h >> 15)))
                wrong_value++;
        } else if ((double)f != half_value((uint16_t)h) || (signbit(f) != 0) != (int)(h >> 15)) {
            wrong_value++;
        }
        if (od_float_to_half(f) != h)
            wrong_bits++;
    }
    OD_CHECK(wrong_value == 0);
    OD_CHECK(wrong_nan == 0);
    OD_CHECK(wrong_bits == 0);
}

static void float_to_half_matches_numpy(void)
{
    od_safetensors *st = od_test_load_reference("half");
    if (!st)
        return;
    od_tensor *input = od_test_tensor(st, "input");
    int64_t count = 0;
    od_error err;
    int32_t *expected = od_safetensors_get_int(st, "half_bits", &count, &err);
    OD_CHECK(input != NULL && expected != NULL);
    if (input && expected) {
        OD_CHECK(count == input->shape[0] && count > 10000);
        uint16_t *got = malloc((size_t)count * sizeof *got);
        od_floats_to_halves(input->data, got, count);
        int64_t mismatches = 0;
        for (int64_t i = 0; i < count; i++) {
            if (got[i] != (uint16_t)expected[i]) {
                if (mismatches < 5)
                    fprintf(stderr, "  %.9g: got 0x%04x, numpy 0x%04x\n", (double)input->data[i], got[i],
                            (unsigned)expected[i]);
                mismatches++;
            }
        }
        OD_CHECK(mismatches == 0);
        free(got);
    }
    free(expected);
    od_tensor_free(input);
    od_safetensors_free(st);
}

static void special_values(void)
{
    OD_CHECK(od_float_to_half(65504.0f) == 0x7bff);
    OD_CHECK(od_float_to_half(65519.99f) == 0x7bff);
    OD_CHECK(od_float_to_half(65520.0f) == 0x7c00);
    OD_CHECK(od_float_to_half(-1e30f) == 0xfc00);
    OD_CHECK(od_float_to_half(0x1p-24f) == 0x0001);
    OD_CHECK(od_float_to_half(0x1p-25f) == 0x0000);     /* tie to even: zero */
    OD_CHECK(od_float_to_half(0x1.8p-24f) == 0x0002);   /* 1.5 ulp ties to 2 */
    OD_CHECK(od_float_to_half(-0.0f) == 0x8000);
    OD_CHECK(od_float_to_half(1.0f + 0x1p-11f) == 0x3c00); /* tie to even: 1 */
    OD_CHECK(od_float_to_half(1.0f + 0x1.8p-10f) == 0x3c02);
    uint16_t nan = od_float_to_half(nanf(""));
    OD_CHECK((nan & 0x7c00) == 0x7c00 && (nan & 0x3ff) != 0);
    /* A NaN whose payload sits only below the bits a half keeps. */
    uint32_t low_payload = 0x7f800001u;
    float low_nan;
    memcpy(&low_nan, &low_payload, sizeof low_nan);
    OD_CHECK(isnan(od_half_to_float(od_float_to_half(low_nan))));
    OD_CHECK(isnan(od_half_to_float(od_float_to_half(-low_nan))));
}

static void reader_decodes_written_halves(void)
{
    uint16_t *bits = malloc(65536 * sizeof *bits);
    for (uint32_t h = 0; h < 65536; h++)
        bits[h] = (uint16_t)h;
    const int64_t shape[2] = {256, 256};
    char path[1024];
    snprintf(path, sizeof path, "%s/halves.safetensors", od_test_temp_dir());
    od_error err;
    od_st_writer *writer = od_st_writer_new();
    OD_CHECK(od_st_writer_add(writer, "h", OD_DTYPE_F16, 2, shape, bits, &err) == 0);
    OD_CHECK(od_st_writer_write(writer, path, &err) == 0);
    od_st_writer_free(writer);
    od_safetensors *st = od_safetensors_read(path, &err);
    OD_CHECK(st != NULL);
    od_tensor *t = st ? od_safetensors_get(st, "h", 2, shape, &err) : NULL;
    OD_CHECK(t != NULL);
    if (t) {
        int64_t mismatches = 0;
        for (uint32_t h = 0; h < 65536; h++) {
            float want = od_half_to_float((uint16_t)h);
            if (isnan(want) ? !isnan(t->data[h]) : memcmp(&want, &t->data[h], sizeof want) != 0)
                mismatches++;
        }
        OD_CHECK(mismatches == 0);
    }
    od_tensor_free(t);
    od_safetensors_free(st);
    free(bits);
}

int main(void)
{
    OD_RUN(every_half_round_trips);
    OD_RUN(float_to_half_matches_numpy);
    OD_RUN(special_values);
    OD_RUN(reader_decodes_written_halves);
    return od_test_finish();
}
