# InstallTest.FindPackage: what a user of the library does, end to end. Installs this build tree
# into a scratch prefix, builds examples/embed against it with find_package(slm) (once with the
# shared slm::slm, once with slm::slm_static) and runs it on the installed bundled model, then
# builds and runs examples/conversations and examples/rag the same way.
#
# cmake -DSLM_SOURCE_DIR=... -DSLM_BINARY_DIR=... -DWORK_DIR=... -DGENERATOR=... -DCXX=...
#       [-DMAKE_PROGRAM=...] [-DSANITIZE=ON] -P install_test.cmake
cmake_minimum_required(VERSION 3.25)

foreach(var SLM_SOURCE_DIR SLM_BINARY_DIR WORK_DIR GENERATOR CXX)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "install_test.cmake: -D${var}=... is required")
  endif()
endforeach()

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

# Runs a command; stops the test with its output when it fails. OUTPUT_VAR receives stdout.
function(run_step name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "OUTPUT_VAR" "COMMAND")
  message(STATUS "[${name}] ${arg_COMMAND}")
  execute_process(COMMAND ${arg_COMMAND} RESULT_VARIABLE rc OUTPUT_VARIABLE out
    ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "[${name}] failed (${rc})\n--- stdout ---\n${out}\n--- stderr ---\n${err}")
  endif()
  if(arg_OUTPUT_VAR)
    set(${arg_OUTPUT_VAR} "${out}" PARENT_SCOPE)
  endif()
endfunction()

# 1. Install.
run_step(install COMMAND ${CMAKE_COMMAND} --install ${SLM_BINARY_DIR} --prefix ${prefix})
foreach(file include/slm/slm.h include/slm/model.h include/slm/error.h share/slm/stories260K.gguf
    bin/slm)
  if(NOT EXISTS ${prefix}/${file})
    message(FATAL_ERROR "not installed: ${prefix}/${file}")
  endif()
endforeach()
file(GLOB_RECURSE config_files ${prefix}/*/slmConfig.cmake)
if(NOT config_files)
  message(FATAL_ERROR "no slmConfig.cmake under ${prefix}")
endif()

# 2. Build and run the example against the installed package, shared then static.
set(flags)
if(SANITIZE)
  # An instrumented libslm needs the sanitizer runtime in the program too.
  set(flags -DCMAKE_CXX_FLAGS=-fsanitize=address,undefined
    -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined)
endif()
if(MAKE_PROGRAM)
  list(APPEND flags -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()
set(prompt "Once upon a time")

foreach(kind shared static)
  if(kind STREQUAL "static")
    set(static ON)
  else()
    set(static OFF)
  endif()
  set(build ${WORK_DIR}/embed-${kind})
  run_step(configure-${kind} COMMAND ${CMAKE_COMMAND} -S ${SLM_SOURCE_DIR}/examples/embed
    -B ${build} -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=${CXX}
    -DCMAKE_PREFIX_PATH=${prefix} -DEMBED_STATIC=${static} ${flags})

  # The package must come from the scratch prefix, not from an slm installed on the system.
  file(STRINGS ${build}/CMakeCache.txt slm_dir REGEX "^slm_DIR:")
  string(REGEX REPLACE "^slm_DIR:[A-Z]+=" "" slm_dir "${slm_dir}")
  cmake_path(IS_PREFIX prefix "${slm_dir}" NORMALIZE from_prefix)
  if(NOT from_prefix)
    message(FATAL_ERROR "find_package(slm) used ${slm_dir}, not the package in ${prefix}")
  endif()

  run_step(build-${kind} COMMAND ${CMAKE_COMMAND} --build ${build})

  # No LD_LIBRARY_PATH: CMake gives the program an RPATH to the installed libslm.so, as it
  # would for any user building against an installed slm.
  run_step(run-${kind} COMMAND ${build}/embed ${prefix}/share/slm/stories260K.gguf ${prompt}
    OUTPUT_VAR text)
  string(STRIP "${text}" text)
  string(LENGTH "${prompt}" prompt_length)
  string(LENGTH "${text}" text_length)
  math(EXPR min_length "${prompt_length} + 10")
  string(FIND "${text}" "${prompt}" at)
  if(NOT at EQUAL 0 OR text_length LESS min_length)
    message(FATAL_ERROR "embed (${kind}) printed no continuation of the prompt:\n${text}")
  endif()
  message(STATUS "[run-${kind}] ${text}")
endforeach()

# 3. The other examples, against the shared library: two conversations on two threads (each
# must continue its own prompt), and the RAG loop (its later questions must reuse the context).
foreach(example conversations rag)
  set(build ${WORK_DIR}/${example})
  run_step(configure-${example} COMMAND ${CMAKE_COMMAND} -S ${SLM_SOURCE_DIR}/examples/${example}
    -B ${build} -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=${CXX}
    -DCMAKE_PREFIX_PATH=${prefix} ${flags})
  run_step(build-${example} COMMAND ${CMAKE_COMMAND} --build ${build})
  run_step(run-${example} COMMAND ${build}/${example} ${prefix}/share/slm/stories260K.gguf
    OUTPUT_VAR text)
  message(STATUS "[run-${example}]\n${text}")
  set(output_${example} "${text}")
endforeach()
foreach(line "\\[seed 1\\] Once upon a time" "\\[seed 2\\] The little dog")
  if(NOT output_conversations MATCHES "${line}[^\n][^\n][^\n][^\n][^\n][^\n][^\n][^\n]")
    message(FATAL_ERROR "conversations did not continue '${line}':\n${output_conversations}")
  endif()
endforeach()
string(REGEX MATCHALL "tokens, [1-9][0-9]* reused" reuses "${output_rag}")
list(LENGTH reuses n_reuses)
if(NOT n_reuses EQUAL 2)
  message(FATAL_ERROR "rag: the 2nd and 3rd questions should reuse the context:\n${output_rag}")
endif()
