// Runs the nsfwjs@4.3.0 InceptionV3 in pure-JavaScript tfjs (CPU backend)
// on a 299 x 299 synthetic image and writes tests/ref/teacher_inceptionv3.safetensors
// (logits and every eighth channel of mixed7, 17 x 17 x 768) and its input
// PNG, which tests/test_weights_inceptionv3.c compares oddone against.
//
// Usage (from tests/oracle, after `npm ci` and scripts/fetch_weights.sh):
//     node inceptionv3.cjs
'use strict';
const { writeReference } = require('./lib.cjs');

writeReference('inception_v3', 'teacher_inceptionv3', 299, 'mixed7', 8)
    .catch((e) => { console.error(e); process.exit(1); });
