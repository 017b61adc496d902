"use strict";
// Stands in for hdr-histogram-js's dist/formatters.js in ferry's bundles, with the same exports and
// output. The original creates an Intl.NumberFormat as soon as a formatter is made, and
// HistogramLogWriter makes one at module load: every import of hdr-histogram-js then paid for ICU's
// number-formatting set-up (~10 ms of a bench function's cold import) though ferry never prints a
// histogram that way. Here the Intl.NumberFormat is created on the first number formatted.
const leftPadding = (size) => (input) =>
  input.length < size ? " ".repeat(size - input.length) + input : input;

exports.integerFormatter = (size) => {
  const padding = leftPadding(size);
  return (integer) => padding(`${integer}`);
};

exports.keepSignificantDigits = (digits) => (value) => {
  const valueDigits = Math.floor(Math.log10(value) + 1);
  if (valueDigits <= digits) return value;
  const magnitude = 10 ** (valueDigits - digits);
  return value - (value % magnitude);
};

exports.floatFormatter = (size, fractionDigits) => {
  const padding = leftPadding(size);
  let numberFormat;
  return (float) => {
    numberFormat ??= new Intl.NumberFormat("en-US", {
      maximumFractionDigits: fractionDigits,
      minimumFractionDigits: fractionDigits,
      useGrouping: false,
    });
    return padding(numberFormat.format(float));
  };
};
