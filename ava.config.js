// Tests are compiled by tsc into dist/ and run from there (tsx does not load in ava's workers on Node 20).
export default {
  files: ['dist/tests/**/*.test.js'],
  timeout: '2m',
  workerThreads: false,
  verbose: true,
};
