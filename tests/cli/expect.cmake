# Runs CMD (a ;-separated list), then requires exit status RC and output matching REGEX.
# Used for the CLI's behaviour on good and bad input (clear messages, never a crash).
execute_process(COMMAND ${CMD} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(all "${out}${err}")
if(NOT rc STREQUAL "${RC}")
  message(FATAL_ERROR "expected exit status ${RC}, got ${rc}\n--- output ---\n${all}")
endif()
if(NOT all MATCHES "${REGEX}")
  message(FATAL_ERROR "output does not match `${REGEX}`\n--- output ---\n${all}")
endif()
message("ok: exit ${rc}, output matches `${REGEX}`")
