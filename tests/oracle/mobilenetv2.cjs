// Runs the nsfwjs@4.3.0 MobileNetV2 in pure-JavaScript tfjs (CPU backend)
// on a 224 x 224 synthetic image and writes tests/ref/teacher_mobilenetv2.safetensors
// (logits and every fourth channel of block_13_expand_relu) and its input
// PNG, which tests/test_weights_mobilenetv2.c compares oddone against.
//
// Usage (from tests/oracle, after `npm ci` and scripts/fetch_weights.sh):
//     node mobilenetv2.cjs
'use strict';
const { writeReference } = require('./lib.cjs');

writeReference('mobilenet_v2', 'teacher_mobilenetv2', 224, 'block_13_expand_relu', 4)
    .catch((e) => { console.error(e); process.exit(1); });
