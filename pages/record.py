import streamlit as st
st.title("record")
