// Report filters: picking a date switches the period to "Custom", so the dates are used.
document.querySelectorAll("form.filters input[type=date]").forEach((input) => {
  input.addEventListener("change", () => {
    const period = input.form.querySelector("select[name=period]");
    if (period) period.value = period.querySelector("option[value=custom]") ? "custom" : "";
  });
});
