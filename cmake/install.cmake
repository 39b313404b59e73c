# install() rules and the exported CMake package: find_package(slm) + target_link_libraries(app slm::slm).
include(CMakePackageConfigHelpers)

install(TARGETS slm_static slm_shared EXPORT slmTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS slm_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/slm DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES models/stories260K.gguf DESTINATION ${CMAKE_INSTALL_DATADIR}/slm)

set(SLM_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/slm)
install(EXPORT slmTargets NAMESPACE slm:: DESTINATION ${SLM_CMAKE_DIR})
configure_package_config_file(cmake/slmConfig.cmake.in ${PROJECT_BINARY_DIR}/slmConfig.cmake
  INSTALL_DESTINATION ${SLM_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/slmConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/slmConfig.cmake ${PROJECT_BINARY_DIR}/slmConfigVersion.cmake
  DESTINATION ${SLM_CMAKE_DIR})
